package cliflags

import (
	"log/slog"

	"github.com/herald-rt/herald/engineio"
)

// EngineConfig returns the Engine.IO configuration the flags describe, for
// the given path ("" for the server's default).
func (s *Server) EngineConfig(path string, log *slog.Logger) engineio.Config {
	cfg := engineio.Config{
		Path:         path,
		PingInterval: s.PingInterval,
		PingTimeout:  s.PingTimeout,
		MaxPayload:   s.MaxPayload,
		AllowEIO3:    s.EIO3,
		NodeID:       s.NodeID,
		Logger:       log,
	}
	if origins := s.CORSOrigins(); len(origins) > 0 {
		cfg.CORS = engineio.CORSConfig{AllowedOrigins: origins, AllowCredentials: true}
	}
	if s.Cookie {
		cfg.Cookie = &engineio.CookieConfig{}
	}
	return cfg
}
