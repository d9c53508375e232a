package cliflags

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/adapter/redis"
)

// BuildAdapter builds the adapter factory the flags ask for: nil for memory (the
// server's default), or a Redis adapter connected to --redis. close releases
// the Redis connections after the server has shut down.
func (s *Server) BuildAdapter(ctx context.Context, log *slog.Logger) (factory adapter.Factory, close func(), err error) {
	if s.Adapter == "memory" || s.Adapter == "" {
		return nil, func() {}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	clients, err := redis.Dial(ctx, s.Redis)
	if err != nil {
		return nil, nil, err
	}
	cfg := redis.Config{Logger: log}
	switch s.Adapter {
	case "redis":
		factory = redis.NewAdapter(clients, cfg)
	case "redis-sharded":
		cfg.SubscriptionMode = s.ShardedMode
		factory = redis.NewShardedAdapter(clients, cfg)
	default:
		clients.Close()
		return nil, nil, fmt.Errorf("unknown adapter %q", s.Adapter)
	}
	return factory, clients.Close, nil
}
