//go:build linux

package xdptest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// NS is a named network namespace (ip netns).
type NS struct {
	Name string
}

var counter atomic.Uint32

// Pair is two namespaces, App and Client, joined by a veth pair: AppIf in
// App, ClientIf in Client.
type Pair struct {
	App, Client     *NS
	AppIf, ClientIf string
	created         []*NS
}

// Prereqs reports what is missing to build namespaces, or nil.
func Prereqs() error {
	if os.Geteuid() != 0 {
		return errors.New("network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New("the ip command (iproute2) is missing")
	}
	return nil
}

// NewPair creates the namespaces and the veth pair and brings the links up.
// On error everything made so far is removed.
func NewPair(tag string) (*Pair, error) {
	if err := Prereqs(); err != nil {
		return nil, err
	}
	id := fmt.Sprintf("%d%d", os.Getpid()%100000, counter.Add(1))
	p := &Pair{
		App:      &NS{Name: "pc-" + tag + "-app-" + id},
		Client:   &NS{Name: "pc-" + tag + "-cli-" + id},
		AppIf:    "pcx" + id + "a",
		ClientIf: "pcx" + id + "c",
	}
	if len(p.AppIf) > 15 {
		return nil, fmt.Errorf("interface name %q too long", p.AppIf)
	}
	for _, ns := range []*NS{p.App, p.Client} {
		if err := run("ip", "netns", "add", ns.Name); err != nil {
			p.Close()
			return nil, err
		}
		p.created = append(p.created, ns)
	}
	steps := [][]string{
		{"ip", "link", "add", p.AppIf, "netns", p.App.Name, "type", "veth", "peer", "name", p.ClientIf, "netns", p.Client.Name},
		{"ip", "-n", p.App.Name, "link", "set", "lo", "up"},
		{"ip", "-n", p.Client.Name, "link", "set", "lo", "up"},
		{"ip", "-n", p.App.Name, "link", "set", p.AppIf, "up"},
		{"ip", "-n", p.Client.Name, "link", "set", p.ClientIf, "up"},
	}
	for _, s := range steps {
		if err := run(s...); err != nil {
			p.Close()
			return nil, err
		}
	}
	return p, nil
}

// Close deletes both namespaces (and with them the veth pair).
func (p *Pair) Close() error {
	var errs []error
	for _, ns := range p.created {
		errs = append(errs, run("ip", "netns", "del", ns.Name))
	}
	p.created = nil
	return errors.Join(errs...)
}

// IP runs `ip -n NS args...`.
func (n *NS) IP(args ...string) error {
	return run(append([]string{"ip", "-n", n.Name}, args...)...)
}

// Exec runs a command inside the namespace and returns its output.
func (n *NS) Exec(args ...string) (string, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.Name}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// Do runs f on an OS thread that has entered the namespace. Sockets created
// by f belong to the namespace for good; so do netlink operations (XDP
// attach). The thread is restored afterwards.
func (n *NS) Do(f func() error) error {
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	target, err := os.Open("/run/netns/" + n.Name)
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("setns %s: %w", n.Name, err)
	}
	ferr := f()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// Leave the thread locked: it dies with its goroutine instead of
		// serving others in the wrong namespace.
		return errors.Join(ferr, fmt.Errorf("restore netns: %w", err))
	}
	runtime.UnlockOSThread()
	return ferr
}

// SNMP reads a counter from the namespace's /proc/net/snmp or netstat, e.g.
// ("Tcp", "PassiveOpens") or ("Ip", "InReceives").
func (n *NS) SNMP(group, name string) (uint64, error) {
	var v uint64
	err := n.Do(func() error {
		for _, f := range []string{"/proc/thread-self/net/snmp", "/proc/thread-self/net/netstat"} {
			b, err := os.ReadFile(f)
			if err != nil {
				return err
			}
			lines := strings.Split(string(b), "\n")
			for i := 0; i+1 < len(lines); i += 2 {
				keys, vals := strings.Fields(lines[i]), strings.Fields(lines[i+1])
				if len(keys) == 0 || keys[0] != group+":" || len(keys) != len(vals) {
					continue
				}
				for j, k := range keys {
					if k == name {
						v, err = strconv.ParseUint(vals[j], 10, 64)
						return err
					}
				}
			}
		}
		return fmt.Errorf("counter %s:%s not found", group, name)
	})
	return v, err
}

func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
