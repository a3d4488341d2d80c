//go:build linux

package xdp

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"

	"github.com/portcullis-gw/portcullis/internal/geoip"
)

type slotState struct {
	sums [5][32]byte
	geo  *geoMaps
	set  bool
}

// geoMaps are the inner maps of one GeoIP table.
type geoMaps struct {
	lpm6 *ebpf.Map
	dir  *dirMaps
}

func (g *geoMaps) Close() error {
	return errors.Join(g.lpm6.Close(), g.dir.Close())
}

// dirMaps are the two inner maps of a DIR-24-8 table.
type dirMaps struct {
	tbl24, tbl8 *ebpf.Map
}

func (d *dirMaps) Close() error {
	var errs []error
	for _, m := range []*ebpf.Map{d.tbl24, d.tbl8} {
		if m != nil {
			errs = append(errs, m.Close())
		}
	}
	return errors.Join(errs...)
}

// Loader owns the XDP program and its maps in the kernel.
type Loader struct {
	log  *slog.Logger
	spec *ebpf.CollectionSpec
	objs xdpObjects

	mu       sync.Mutex
	seq      uint32
	geoTable *geoip.Table
	geoMaps  *geoMaps
	// installed[slot] fingerprints what each slot holds, so an update only
	// replaces the inner maps that changed: every replacement of an inner
	// map waits for an RCU grace period in the kernel.
	installed [2]slotState
	links     []link.Link
	attached  []Attachment
	closed    bool
}

// NewLoader loads the program and its maps into the kernel (needs
// CAP_BPF/CAP_NET_ADMIN) and publishes an empty policy, which passes
// everything.
func NewLoader(log *slog.Logger) (*Loader, error) {
	if log == nil {
		log = slog.Default()
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("xdp: remove memlock limit: %w", err)
	}
	spec, err := loadXdp()
	if err != nil {
		return nil, fmt.Errorf("xdp: load spec: %w", err)
	}
	l := &Loader{log: log, spec: spec}
	if err := spec.LoadAndAssign(&l.objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("xdp: load program: %+v", ve)
		}
		return nil, fmt.Errorf("xdp: load program: %w", err)
	}
	empty, _ := NewPolicy(Rules{}, nil)
	if err := l.Update(empty); err != nil {
		l.objs.Close()
		return nil, err
	}
	return l, nil
}

// Program returns the loaded XDP program (for BPF_PROG_TEST_RUN in tests
// and benchmarks).
func (l *Loader) Program() *ebpf.Program { return l.objs.PortcullisXdp }

// Attach attaches the program to every interface. In ModeAuto it tries
// native mode first and falls back to generic mode, reporting which it got.
// On error, interfaces attached by this call are detached again.
func (l *Loader) Attach(ifaces []string, mode AttachMode) ([]Attachment, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var (
		links []link.Link
		atts  []Attachment
	)
	fail := func(err error) ([]Attachment, error) {
		for _, lk := range links {
			lk.Close()
		}
		return nil, err
	}
	for _, name := range ifaces {
		ifc, err := net.InterfaceByName(name)
		if err != nil {
			return fail(fmt.Errorf("xdp: attach %s: %w", name, err))
		}
		var tries []AttachMode
		switch mode {
		case ModeAuto:
			tries = []AttachMode{ModeNative, ModeGeneric}
		default:
			tries = []AttachMode{mode}
		}
		var errs []error
		var lk link.Link
		var got AttachMode
		for _, m := range tries {
			flags := link.XDPDriverMode
			if m == ModeGeneric {
				flags = link.XDPGenericMode
			}
			lk, err = link.AttachXDP(link.XDPOptions{Program: l.objs.PortcullisXdp, Interface: ifc.Index, Flags: flags})
			if err == nil {
				got = m
				break
			}
			errs = append(errs, fmt.Errorf("%s mode: %w", m, err))
			if m == ModeNative && mode == ModeAuto {
				l.log.Warn("xdp: native attach failed, trying generic mode", "iface", name, "err", err)
			}
		}
		if lk == nil {
			return fail(fmt.Errorf("xdp: attach %s: %w", name, errors.Join(errs...)))
		}
		links = append(links, lk)
		a := Attachment{Iface: name, Mode: got.String()}
		atts = append(atts, a)
		l.log.Info("xdp: attached", "iface", name, "mode", a.Mode)
	}
	l.links = append(l.links, links...)
	l.attached = append(l.attached, atts...)
	return atts, nil
}

// Detach removes the program from every interface; maps and policy stay
// loaded and Attach may be called again.
func (l *Loader) Detach() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var errs []error
	for _, lk := range l.links {
		errs = append(errs, lk.Close())
	}
	l.links, l.attached = nil, nil
	return errors.Join(errs...)
}

// Attachments lists the interfaces the program is attached to.
func (l *Loader) Attachments() []Attachment {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Attachment(nil), l.attached...)
}

// Update publishes p atomically: it fills fresh inner maps into the idle
// slot, then flips the live slot. On error nothing changes. The GeoIP map is
// rebuilt only when p's table differs from the last one published.
func (l *Loader) Update(p *Policy) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errors.New("xdp: update: loader closed")
	}
	mc := p.mapContents()
	next := (l.seq + 1) & 1
	var built []*ebpf.Map
	defer func() {
		for _, m := range built {
			if m != nil {
				m.Close()
			}
		}
	}()
	sets := []struct {
		outer   *ebpf.Map
		name    string
		entries []kv
	}{
		{l.objs.GlobalCidrs, "global_cidrs", mc.global},
		{l.objs.ListenerCidrs, "listener_cidrs", mc.lcidr},
		{l.objs.Listeners, "listeners", mc.listeners},
		{l.objs.Pins, "pins", mc.pins},
		{l.objs.Frags, "frags", mc.frags},
	}
	state := l.installed[next]
	var sums [5][32]byte
	var globalDIR *dirMaps
	defer func() {
		if globalDIR != nil {
			globalDIR.Close()
		}
	}()
	for i := range sets {
		s := &sets[i]
		sums[i] = fingerprint(s.entries)
		if state.set && state.sums[i] == sums[i] {
			built = append(built, nil) // the idle slot already holds it
			continue
		}
		if i == 0 { // global: IPv6 prefixes in the LPM trie, IPv4 ones flat
			var dir *dir248
			var err error
			s.entries, dir = splitCIDRs(mc.cidrs)
			if globalDIR, err = l.buildDIR(dir, "global24", "global8"); err != nil {
				return fmt.Errorf("xdp: update: %w", err)
			}
		}
		m, err := l.newInner(s.name, len(s.entries))
		if err != nil {
			return fmt.Errorf("xdp: update: %w", err)
		}
		built = append(built, m)
		for _, e := range s.entries {
			if err := m.Update(e.k, e.v, ebpf.UpdateAny); err != nil {
				return fmt.Errorf("xdp: update: fill %s: %w", s.name, err)
			}
		}
	}
	geo := l.geoMaps
	newGeo := geo == nil || p.geo != l.geoTable
	if newGeo {
		var err error
		if geo, err = l.buildGeo(p.geo); err != nil {
			return fmt.Errorf("xdp: update: %w", err)
		}
	}
	abort := func(err error) error {
		if newGeo {
			geo.Close()
		}
		l.installed[next] = slotState{} // partly written: rewrite all next time
		return fmt.Errorf("xdp: update: %w", err)
	}
	for i, s := range sets {
		if built[i] == nil {
			continue
		}
		if err := s.outer.Update(next, built[i], ebpf.UpdateAny); err != nil {
			return abort(fmt.Errorf("publish %s: %w", s.name, err))
		}
	}
	if globalDIR != nil {
		if err := l.objs.Global24.Update(next, globalDIR.tbl24, ebpf.UpdateAny); err != nil {
			return abort(fmt.Errorf("publish global24: %w", err))
		}
		if err := l.objs.Global8.Update(next, globalDIR.tbl8, ebpf.UpdateAny); err != nil {
			return abort(fmt.Errorf("publish global8: %w", err))
		}
	}
	if !state.set || state.geo != geo {
		for _, g := range []struct {
			outer, inner *ebpf.Map
		}{{l.objs.Geo, geo.lpm6}, {l.objs.Geo24, geo.dir.tbl24}, {l.objs.Geo8, geo.dir.tbl8}} {
			if err := g.outer.Update(next, g.inner, ebpf.UpdateAny); err != nil {
				return abort(fmt.Errorf("publish geo: %w", err))
			}
		}
	}
	if err := l.objs.SlotSettings.Update(next, u32Bytes(mc.settings), ebpf.UpdateAny); err != nil {
		return abort(fmt.Errorf("publish settings: %w", err))
	}
	l.installed[next] = slotState{sums: sums, geo: geo, set: true}
	// The flip: from here on packets read the new slot.
	if err := l.objs.Config.Update(uint32(0), u32Bytes(l.seq+1), ebpf.UpdateAny); err != nil {
		return abort(fmt.Errorf("flip: %w", err))
	}
	l.seq++
	if newGeo {
		if l.geoMaps != nil {
			l.geoMaps.Close() // still referenced by the idle slot until the next update
		}
		l.geoMaps, l.geoTable = geo, p.geo
	}
	return nil
}

// fingerprint identifies a map's contents independently of entry order.
func fingerprint(entries []kv) [32]byte {
	sorted := slices.Clone(entries)
	slices.SortFunc(sorted, func(a, b kv) int { return bytes.Compare(a.k, b.k) })
	h := sha256.New()
	for _, e := range sorted {
		h.Write(e.k)
		h.Write(e.v)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

func (l *Loader) newInner(outer string, n int) (*ebpf.Map, error) {
	ms := l.spec.Maps[outer]
	if ms == nil || ms.InnerMap == nil {
		return nil, fmt.Errorf("map %s: no inner map spec", outer)
	}
	inner := ms.InnerMap.Copy()
	inner.MaxEntries = uint32(max(n, 1))
	inner.Contents = nil
	m, err := ebpf.NewMap(inner)
	if err != nil {
		return nil, fmt.Errorf("create %s inner map (%d entries): %w", outer, n, err)
	}
	return m, nil
}

func (l *Loader) buildGeo(t *geoip.Table) (*geoMaps, error) {
	var entries []kv
	geoEntries(t, func(k []byte, cc uint16) bool {
		entries = append(entries, kv{k, []byte{byte(cc), byte(cc >> 8)}})
		return true
	})
	lpm6, err := l.newInner("geo", len(entries))
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if err := lpm6.Update(e.k, e.v, ebpf.UpdateAny); err != nil {
			lpm6.Close()
			return nil, fmt.Errorf("fill geo: %w", err)
		}
	}
	dir, err := l.buildDIR(buildDIR248(t), "geo24", "geo8")
	if err != nil {
		lpm6.Close()
		return nil, err
	}
	return &geoMaps{lpm6: lpm6, dir: dir}, nil
}

// buildDIR creates and fills the inner maps of a DIR-24-8 table.
func (l *Loader) buildDIR(d *dir248, outer24, outer8 string) (dm *dirMaps, err error) {
	dm = &dirMaps{}
	defer func() {
		if err != nil {
			dm.Close()
		}
	}()
	pages := len(d.tbl24) / dirPage24
	if dm.tbl24, err = l.newInner(outer24, pages); err != nil {
		return nil, err
	}
	page := make([]byte, 4*dirPage24)
	for i := range pages {
		zero := true
		for j, v := range d.tbl24[i*dirPage24 : (i+1)*dirPage24] {
			binary.LittleEndian.PutUint32(page[4*j:], v)
			zero = zero && v == 0
		}
		if zero {
			continue // arrays start zeroed
		}
		if err := dm.tbl24.Update(uint32(i), page, ebpf.UpdateAny); err != nil {
			return nil, fmt.Errorf("fill %s: %w", outer24, err)
		}
	}
	if dm.tbl8, err = l.newInner(outer8, len(d.tbl8)); err != nil {
		return nil, err
	}
	grp := make([]byte, 2*256)
	for i := range d.tbl8 {
		for j, v := range d.tbl8[i] {
			binary.LittleEndian.PutUint16(grp[2*j:], v)
		}
		if err := dm.tbl8.Update(uint32(i), grp, ebpf.UpdateAny); err != nil {
			return nil, fmt.Errorf("fill %s: %w", outer8, err)
		}
	}
	return dm, nil
}

// Stats reads the per-CPU counters and sums them per reason.
func (l *Loader) Stats() (Counters, error) {
	var c Counters
	for i := range c {
		var per []uint64
		if err := l.objs.Counters.Lookup(uint32(i), &per); err != nil {
			return c, fmt.Errorf("xdp: read counters: %w", err)
		}
		for _, n := range per {
			c[i] += n
		}
	}
	return c, nil
}

// Close detaches from every interface and unloads program and maps. It is
// safe to call more than once.
func (l *Loader) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	var errs []error
	for _, lk := range l.links {
		errs = append(errs, lk.Close())
	}
	l.links, l.attached = nil, nil
	if l.geoMaps != nil {
		errs = append(errs, l.geoMaps.Close())
	}
	errs = append(errs, l.objs.Close())
	return errors.Join(errs...)
}
