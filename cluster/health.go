package cluster

import (
	"fmt"
	"net/http"
)

// HealthSource is what the health endpoint reports on; *engineio.Server
// implements it.
type HealthSource interface {
	NodeID() string
	Count() int
	Draining() bool
}

// HealthHandler serves the health contract balancers rely on (herald lb,
// nginx, HAProxy checks):
//
//	GET /health  → 200 "ok node=<id> sessions=<n>\n", or while draining
//	               503 "draining node=<id> sessions=<n>\n"
//	HEAD /health → the same status, no body
func HealthHandler(src HealthSource) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		state, status := "ok", http.StatusOK
		if src.Draining() {
			state, status = "draining", http.StatusServiceUnavailable
		}
		body := fmt.Sprintf("%s node=%s sessions=%d\n", state, src.NodeID(), src.Count())
		h.Set("Content-Length", fmt.Sprint(len(body)))
		w.WriteHeader(status)
		if r.Method != http.MethodHead {
			w.Write([]byte(body))
		}
	})
}
