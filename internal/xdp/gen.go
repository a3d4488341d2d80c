package xdp

// The BPF object is generated and committed so `go build` needs no clang.
// `make generate` rebuilds it (needs clang, llvm and libbpf-dev). The -I
// paths find asm/types.h on Debian multiarch hosts; a missing one is ignored.
//go:generate go tool bpf2go -tags linux -target bpfel xdp bpf/xdp.c -- -O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu -I/usr/include/aarch64-linux-gnu
//go:generate go tool bpf2go -tags linux -target bpfel bench bpf/bench.c -- -O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu -I/usr/include/aarch64-linux-gnu
