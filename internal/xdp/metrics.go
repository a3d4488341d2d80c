package xdp

import (
	"github.com/prometheus/client_golang/prometheus"
)

var (
	descPackets = prometheus.NewDesc("portcullis_xdp_packets_total",
		"Packets judged by the XDP program, by verdict reason.", []string{"reason"}, nil)
	descUser = prometheus.NewDesc("portcullis_netpolicy_userspace_decisions_total",
		"Connections judged by the userspace network policy check, by reason.", []string{"reason"}, nil)
	descFallback = prometheus.NewDesc("portcullis_xdp_fallback",
		"1 when the XDP program is not active and network rules are enforced in userspace only.", nil, nil)
	descAttached = prometheus.NewDesc("portcullis_xdp_attached",
		"Interfaces the XDP program is attached to, by mode (native or generic).", []string{"iface", "mode"}, nil)
	descUpdates = prometheus.NewDesc("portcullis_xdp_policy_updates_total",
		"Network policies published to the datapath.", nil, nil)
	descFailures = prometheus.NewDesc("portcullis_xdp_policy_update_failures_total",
		"Network policies the kernel refused.", nil, nil)
)

// Collector exports the datapath's counters for the admin listener's
// GET /metrics: register it with the node's prometheus.Registry.
func (d *Datapath) Collector() prometheus.Collector { return collector{d} }

type collector struct{ d *Datapath }

var _ prometheus.Collector = collector{}

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPackets, descUser, descFallback, descAttached, descUpdates, descFailures} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	d := c.d
	fallback := 0.0
	if d.loader == nil {
		fallback = 1
	}
	ch <- prometheus.MustNewConstMetric(descFallback, prometheus.GaugeValue, fallback)
	ch <- prometheus.MustNewConstMetric(descUpdates, prometheus.CounterValue, float64(d.updates.Load()))
	ch <- prometheus.MustNewConstMetric(descFailures, prometheus.CounterValue, float64(d.failed.Load()))
	for i := range d.user {
		ch <- prometheus.MustNewConstMetric(descUser, prometheus.CounterValue, float64(d.user[i].Load()), Reason(i).String())
	}
	if d.loader == nil {
		return
	}
	for _, a := range d.loader.Attachments() {
		ch <- prometheus.MustNewConstMetric(descAttached, prometheus.GaugeValue, 1, a.Iface, a.Mode)
	}
	counters, err := d.loader.Stats()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descPackets, err)
		return
	}
	for i, n := range counters {
		ch <- prometheus.MustNewConstMetric(descPackets, prometheus.CounterValue, float64(n), Reason(i).String())
	}
}
