package balancer

import (
	"fmt"
	"net/http"
	"strings"
)

// serveMetrics writes the balancer's own metrics in the Prometheus text
// format (version 0.0.4), by hand: the balancer takes no metrics library.
func (b *Balancer) serveMetrics(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if r.Method == http.MethodHead {
		return
	}
	list := b.Status()
	var sb strings.Builder
	family := func(name, typ, help string, value func(s BackendStatus) string) {
		fmt.Fprintf(&sb, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
		for _, s := range list {
			fmt.Fprintf(&sb, "%s{backend=\"%s\",node=\"%s\"} %s\n", name, escapeLabel(s.URL), escapeLabel(s.NodeID), value(s))
		}
	}
	u := func(n uint64) string { return fmt.Sprint(n) }
	family("herald_lb_requests_total", "counter", "Requests proxied to each backend.",
		func(s BackendStatus) string { return u(s.Requests) })
	family("herald_lb_new_sessions_total", "counter", "Engine.IO handshakes (new sessions) sent to each backend.",
		func(s BackendStatus) string { return u(s.NewSessions) })
	family("herald_lb_proxy_errors_total", "counter", "Proxied requests that got no answer from the backend.",
		func(s BackendStatus) string { return u(s.Errors) })
	family("herald_lb_backend_sessions", "gauge", "Sessions the backend reported at its last health check.",
		func(s BackendStatus) string { return fmt.Sprint(s.Sessions) })
	fmt.Fprintf(&sb, "# HELP herald_lb_backend_state Health of each backend: 1 for its current state, 0 for the others.\n# TYPE herald_lb_backend_state gauge\n")
	for _, s := range list {
		for _, st := range []State{Unknown, Healthy, Draining, Down} {
			v := 0
			if s.State == st {
				v = 1
			}
			fmt.Fprintf(&sb, "herald_lb_backend_state{backend=\"%s\",node=\"%s\",state=\"%s\"} %d\n", escapeLabel(s.URL), escapeLabel(s.NodeID), st, v)
		}
	}
	fmt.Fprintf(&sb, "# HELP herald_lb_unknown_session_total Requests answered 400 Session ID unknown because the owner of their sid is gone.\n# TYPE herald_lb_unknown_session_total counter\nherald_lb_unknown_session_total %d\n", b.unknownSessions.Load())
	fmt.Fprintf(&sb, "# HELP herald_lb_no_backend_total New sessions refused (503) because no backend was healthy.\n# TYPE herald_lb_no_backend_total counter\nherald_lb_no_backend_total %d\n", b.noBackend.Load())
	w.Write([]byte(sb.String()))
}

// escapeLabel escapes a Prometheus label value.
func escapeLabel(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}
