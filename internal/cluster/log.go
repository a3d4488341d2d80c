package cluster

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"

	"github.com/hashicorp/go-hclog"
)

// levelTrace is slog's level for hclog's Trace (below Debug).
const levelTrace = slog.LevelDebug - 4

// hcLogger routes hclog output (raft, raft-boltdb) into a *slog.Logger.
// Levels are decided by the slog handler; SetLevel is ignored.
type hcLogger struct {
	l       *slog.Logger
	name    string
	implied []any
}

var _ hclog.Logger = (*hcLogger)(nil)

func newHCLogger(l *slog.Logger) *hcLogger { return &hcLogger{l: l} }

func toSlogLevel(level hclog.Level) slog.Level {
	switch level {
	case hclog.Trace:
		return levelTrace
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

func (h *hcLogger) Log(level hclog.Level, msg string, args ...any) {
	if level == hclog.Off {
		return
	}
	h.log(toSlogLevel(level), msg, args)
}

func (h *hcLogger) log(level slog.Level, msg string, args []any) {
	ctx := context.Background()
	if !h.l.Enabled(ctx, level) {
		return
	}
	args = renderArgs(args)
	if h.name != "" {
		args = append([]any{"logger", h.name}, args...)
	}
	h.l.Log(ctx, level, msg, args...)
}

// renderArgs formats hclog's value wrappers (hclog.Fmt, Hex, Octal, Quote)
// as strings, as hclog itself would; other values pass through.
func renderArgs(args []any) []any {
	var out []any
	for i, v := range args {
		var r any
		switch x := v.(type) {
		case hclog.Format:
			if len(x) > 0 {
				if f, ok := x[0].(string); ok {
					r = fmt.Sprintf(f, x[1:]...)
				}
			}
		case hclog.Hex:
			r = fmt.Sprintf("0x%x", int(x))
		case hclog.Octal:
			r = fmt.Sprintf("0%o", int(x))
		case hclog.Quote:
			r = fmt.Sprintf("%q", string(x))
		}
		if r != nil {
			if out == nil {
				out = append([]any(nil), args...)
			}
			out[i] = r
		}
	}
	if out == nil {
		return args
	}
	return out
}

func (h *hcLogger) Trace(msg string, args ...any) { h.log(levelTrace, msg, args) }
func (h *hcLogger) Debug(msg string, args ...any) { h.log(slog.LevelDebug, msg, args) }
func (h *hcLogger) Info(msg string, args ...any)  { h.log(slog.LevelInfo, msg, args) }
func (h *hcLogger) Warn(msg string, args ...any)  { h.log(slog.LevelWarn, msg, args) }
func (h *hcLogger) Error(msg string, args ...any) { h.log(slog.LevelError, msg, args) }

func (h *hcLogger) enabled(l slog.Level) bool { return h.l.Enabled(context.Background(), l) }
func (h *hcLogger) IsTrace() bool             { return h.enabled(levelTrace) }
func (h *hcLogger) IsDebug() bool             { return h.enabled(slog.LevelDebug) }
func (h *hcLogger) IsInfo() bool              { return h.enabled(slog.LevelInfo) }
func (h *hcLogger) IsWarn() bool              { return h.enabled(slog.LevelWarn) }
func (h *hcLogger) IsError() bool             { return h.enabled(slog.LevelError) }

func (h *hcLogger) ImpliedArgs() []any { return h.implied }

func (h *hcLogger) With(args ...any) hclog.Logger {
	c := *h
	c.l = h.l.With(args...)
	c.implied = append(append([]any(nil), h.implied...), args...)
	return &c
}

func (h *hcLogger) Name() string { return h.name }

func (h *hcLogger) Named(name string) hclog.Logger {
	c := *h
	if c.name != "" {
		c.name += "." + name
	} else {
		c.name = name
	}
	return &c
}

func (h *hcLogger) ResetNamed(name string) hclog.Logger {
	c := *h
	c.name = name
	return &c
}

func (h *hcLogger) SetLevel(hclog.Level) {}

func (h *hcLogger) GetLevel() hclog.Level {
	switch {
	case h.IsTrace():
		return hclog.Trace
	case h.IsDebug():
		return hclog.Debug
	case h.IsInfo():
		return hclog.Info
	case h.IsWarn():
		return hclog.Warn
	default:
		return hclog.Error
	}
}

func (h *hcLogger) StandardLogger(*hclog.StandardLoggerOptions) *log.Logger {
	return slog.NewLogLogger(h.l.Handler(), slog.LevelInfo)
}

func (h *hcLogger) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	return h.StandardLogger(opts).Writer()
}
