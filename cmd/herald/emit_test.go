package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/herald-rt/herald/internal/testutil"
)

// clearEmitEnv keeps the caller's HERALD_* variables out of a test.
func clearEmitEnv(t *testing.T) {
	for _, v := range []string{"HERALD_REDIS", "HERALD_ADAPTER", "HERALD_SHARDED_MODE"} {
		t.Setenv(v, "")
	}
}

func TestEmitUsageErrors(t *testing.T) {
	clearEmitEnv(t)
	const url = "--redis=redis://127.0.0.1:1"
	tests := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"no redis", []string{"ev"}, "--redis URL is required"},
		{"no event", []string{url}, "missing EVENT"},
		{"empty event", []string{url, ""}, "empty EVENT"},
		{"unknown flag", []string{url, "--nope", "ev"}, "flag provided but not defined: -nope"},
		{"flag after event", []string{url, "ev", "--to", "r1"}, "flag --to after the event name"},
		{"flag=value after event", []string{url, "ev", "1", "-volatile=true"}, "flag -volatile=true after the event name"},
		{"bad adapter", []string{url, "--adapter", "memory", "ev"}, `--adapter "memory"`},
		{"bad mode", []string{url, "--adapter", "redis-sharded", "--sharded-mode", "sometimes", "ev"}, `--sharded-mode "sometimes"`},
		{"two modes", []string{url, "--join", "a", "--leave", "b"}, "only one of"},
		{"close alone", []string{url, "--close", "ev"}, "--close goes with --disconnect"},
		{"server-side with rooms", []string{url, "--server-side", "--to", "r1", "ev"}, "--server-side reaches every server"},
		{"volatile join", []string{url, "--volatile", "--join", "r1"}, "--volatile applies to events only"},
		{"join with event", []string{url, "--join", "r1", "ev"}, "take no EVENT"},
		{"disconnect with event", []string{url, "--disconnect", "ev"}, "take no EVENT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(append([]string{"emit"}, tt.args...), &stdout, &stderr); code != 2 {
				t.Errorf("exit code %d, want 2", code)
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr %q does not contain %q", stderr.String(), tt.want)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout %q", stdout.String())
			}
		})
	}
}

func TestEmitHelp(t *testing.T) {
	for _, arg := range []string{"-h", "--help"} {
		var stdout, stderr bytes.Buffer
		if code := run([]string{"emit", arg}, &stdout, &stderr); code != 0 {
			t.Errorf("%s: exit code %d", arg, code)
		}
		for _, want := range []string{"herald emit --redis URL", "--server-side", "-sharded-mode", "Exit status"} {
			if !strings.Contains(stdout.String(), want) {
				t.Errorf("%s: help does not mention %q", arg, want)
			}
		}
	}
	var stdout, stderr bytes.Buffer
	run([]string{"help"}, &stdout, &stderr)
	if strings.Contains(stdout.String(), "emit an event to a cluster via Redis (not built yet)") {
		t.Error("herald help still says emit is not built")
	}
}

func TestEmitArgs(t *testing.T) {
	clearEmitEnv(t)
	tests := []struct {
		args []string
		want []any
	}{
		{[]string{"1", "true", "null", `"42"`, `{ "a" : [1, 2] }`}, []any{json.RawMessage("1"), json.RawMessage("true"), json.RawMessage("null"), json.RawMessage(`"42"`), json.RawMessage(`{"a":[1,2]}`)}},
		{[]string{"hello", "", "{oops", "-3", "two words"}, []any{"hello", "", "{oops", json.RawMessage("-3"), "two words"}},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		o, code := parseEmit(append([]string{"--redis", "redis://x", "ev"}, tt.args...), &stdout, &stderr)
		if o == nil {
			t.Fatalf("%q: exit %d: %s", tt.args, code, stderr.String())
		}
		if o.event != "ev" || !reflect.DeepEqual(o.args, tt.want) {
			t.Errorf("%q: got %q %#v", tt.args, o.event, o.args)
		}
	}
	// After --, words that look like flags are arguments.
	var stdout, stderr bytes.Buffer
	o, _ := parseEmit([]string{"--redis", "redis://x", "--", "ev", "--to"}, &stdout, &stderr)
	if o == nil || !reflect.DeepEqual(o.args, []any{"--to"}) {
		t.Errorf("after --: %+v %s", o, stderr.String())
	}
}

// subscriber records what Redis delivers on a PSUBSCRIBE * (classic) or an
// SSUBSCRIBE of the given channels (sharded).
type subscriber struct {
	msgs   chan rueidis.PubSubMessage
	client rueidis.Client
}

func subscribe(t *testing.T, url string, sharded bool, channels ...string) *subscriber {
	t.Helper()
	opt, err := rueidis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	opt.DisableCache = true
	client, err := rueidis.NewClient(opt)
	if err != nil {
		t.Fatal(err)
	}
	s := &subscriber{msgs: make(chan rueidis.PubSubMessage, 100), client: client}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); client.Close() })
	cmd := client.B().Psubscribe().Pattern("*").Build()
	if sharded {
		cmd = client.B().Ssubscribe().Channel(channels...).Build()
	}
	go client.Receive(ctx, cmd, func(m rueidis.PubSubMessage) {
		select {
		case s.msgs <- m:
		case <-ctx.Done():
		}
	})
	// Publish probes until one comes back: the subscription is live.
	probe := "probe"
	if sharded {
		probe = channels[0]
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if sharded {
			client.Do(ctx, client.B().Spublish().Channel(probe).Message("probe").Build())
		} else {
			client.Do(ctx, client.B().Publish().Channel(probe).Message("probe").Build())
		}
		select {
		case <-s.msgs:
			// Drain the probes still in flight.
			for {
				select {
				case <-s.msgs:
				case <-time.After(50 * time.Millisecond):
					return s
				}
			}
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("subscription not established")
		}
	}
}

func (s *subscriber) next(t *testing.T) rueidis.PubSubMessage {
	t.Helper()
	select {
	case m := <-s.msgs:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("nothing published")
	}
	return rueidis.PubSubMessage{}
}

// TestEmitClassic runs herald emit against a real redis-server and checks
// that it publishes the bytes @socket.io/redis-emitter 5.1.0 published in
// the reference capture (Appendix A, steps 07–13).
func TestEmitClassic(t *testing.T) {
	clearEmitEnv(t)
	r := testutil.StartRedis(t)
	sub := subscribe(t, r.URL(), false)
	tests := []struct {
		name    string
		args    []string
		channel string
		hex     string
	}{
		{"07", []string{"from-emitter", `{"a":1}`}, "socket.io#/#",
			"93a7656d697474657283a47479706502a46461746192ac66726f6d2d656d697474657281a16101a36e7370a12f83a5726f6f6d7390a5666c61677380a665786365707490"},
		{"08", []string{"--to", "r1", "em-room", "y"}, "socket.io#/#r1#",
			"93a7656d697474657283a47479706502a46461746192a7656d2d726f6f6da179a36e7370a12f83a5726f6f6d7391a27231a5666c61677380a665786365707490"},
		{"09", []string{"--to", "r1", "--to", "r2", "--except", "r3", "--volatile", "em-multi", "2"}, "socket.io#/#",
			"93a7656d697474657283a47479706502a46461746192a8656d2d6d756c746902a36e7370a12f83a5726f6f6d7392a27231a27232a5666c61677381a8766f6c6174696c65c3a665786365707491a27233"},
		{"10", []string{"--server-side", "em-sse", "1", "two"}, "socket.io-request#/#",
			"7b22756964223a22656d6974746572222c2274797065223a362c2264617461223a5b22656d2d737365222c312c2274776f225d7d"},
		{"11", []string{"--to", "r1", "--join", "r3"}, "socket.io-request#/#",
			"7b2274797065223a322c226f707473223a7b22726f6f6d73223a5b227231225d2c22657863657074223a5b5d7d2c22726f6f6d73223a5b227233225d7d"},
		{"12", []string{"--to", "r3", "--leave", "r3"}, "socket.io-request#/#",
			"7b2274797065223a332c226f707473223a7b22726f6f6d73223a5b227233225d2c22657863657074223a5b5d7d2c22726f6f6d73223a5b227233225d7d"},
		{"13", []string{"--to", "nope", "--disconnect", "--close"}, "socket.io-request#/#",
			"7b2274797065223a342c226f707473223a7b22726f6f6d73223a5b226e6f7065225d2c22657863657074223a5b5d7d2c22636c6f7365223a747275657d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"emit", "--redis", r.URL()}, tt.args...)
			if code := run(args, &stdout, &stderr); code != 0 {
				t.Fatalf("exit code %d: %s", code, stderr.String())
			}
			m := sub.next(t)
			if m.Channel != tt.channel {
				t.Errorf("channel %q, want %q", m.Channel, tt.channel)
			}
			want, _ := hex.DecodeString(tt.hex)
			if !bytes.Equal([]byte(m.Message), want) {
				t.Errorf("bytes\n got %x\nwant %x", m.Message, want)
			}
			if !strings.HasPrefix(stdout.String(), "published ") {
				t.Errorf("stdout %q", stdout.String())
			}
			// No node listens on this Redis: the command says so.
			if !strings.Contains(stderr.String(), "warning: no node serves namespace /") {
				t.Errorf("no warning in stderr %q", stderr.String())
			}
		})
	}
}

// TestEmitSharded checks the sharded protocol: SPUBLISH of ClusterAdapter
// messages with uid "emitter", a one-room broadcast on the room's channel
// (dynamic mode) or the main channel (static mode).
func TestEmitSharded(t *testing.T) {
	clearEmitEnv(t)
	r := testutil.StartRedis(t)
	sub := subscribe(t, r.URL(), true, "k#/chat#", "k#/chat#r1#")
	tests := []struct {
		name    string
		args    []string
		channel string
		json    string
	}{
		{"emit", []string{"news", `{"a": 1}`, "x"}, "k#/chat#",
			`{"type":3,"data":{"packet":{"type":2,"data":["news",{"a":1},"x"]},"opts":{"rooms":[],"except":[],"flags":{}}},"uid":"emitter","nsp":"/chat"}`},
		{"one room", []string{"--to", "r1", "news", "1"}, "k#/chat#r1#",
			`{"type":3,"data":{"packet":{"type":2,"data":["news",1]},"opts":{"rooms":["r1"],"except":[],"flags":{}}},"uid":"emitter","nsp":"/chat"}`},
		{"one room, static", []string{"--sharded-mode", "static", "--to", "r1", "news", "1"}, "k#/chat#",
			`{"type":3,"data":{"packet":{"type":2,"data":["news",1]},"opts":{"rooms":["r1"],"except":[],"flags":{}}},"uid":"emitter","nsp":"/chat"}`},
		{"server-side", []string{"--server-side", "sse", "[1]"}, "k#/chat#",
			`{"type":9,"data":{"packet":["sse",[1]]},"uid":"emitter","nsp":"/chat"}`},
		{"join", []string{"--to", "r1", "--except", "r2", "--join", "r3", "--join", "r4"}, "k#/chat#",
			`{"type":4,"data":{"opts":{"rooms":["r1"],"except":["r2"],"flags":{}},"rooms":["r3","r4"]},"uid":"emitter","nsp":"/chat"}`},
		{"leave", []string{"--leave", "r3"}, "k#/chat#",
			`{"type":5,"data":{"opts":{"rooms":[],"except":[],"flags":{}},"rooms":["r3"]},"uid":"emitter","nsp":"/chat"}`},
		{"disconnect", []string{"--to", "r1", "--disconnect"}, "k#/chat#",
			`{"type":6,"data":{"opts":{"rooms":["r1"],"except":[],"flags":{}},"close":false},"uid":"emitter","nsp":"/chat"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"emit", "--redis", r.URL(), "--adapter", "redis-sharded", "--key", "k", "--nsp", "chat"}, tt.args...)
			if code := run(args, &stdout, &stderr); code != 0 {
				t.Fatalf("exit code %d: %s", code, stderr.String())
			}
			m := sub.next(t)
			if m.Channel != tt.channel || m.Message != tt.json {
				t.Errorf("got %s %s\nwant %s %s", m.Channel, m.Message, tt.channel, tt.json)
			}
			// The subscriber counts as a node of the namespace.
			if !strings.Contains(stdout.String(), "in namespace /chat (1 node serving it)") {
				t.Errorf("stdout %q", stdout.String())
			}
		})
	}
}

func TestEmitRuntimeErrors(t *testing.T) {
	clearEmitEnv(t)
	r := testutil.StartRedis(t)
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"reserved event", []string{"--redis", r.URL(), "disconnect"}, 2, "reserved event name"},
		{"reserved server-side event", []string{"--redis", r.URL(), "--server-side", "connection"}, 2, "reserved event name"},
		{"unreachable redis", []string{"--redis", "redis://127.0.0.1:1", "--timeout", "2s", "ev"}, 1, "cannot connect"},
		{"bad URL", []string{"--redis", "http://x", "ev"}, 1, "bad URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(append([]string{"emit"}, tt.args...), &stdout, &stderr); code != tt.code {
				t.Errorf("exit code %d, want %d", code, tt.code)
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr %q does not contain %q", stderr.String(), tt.want)
			}
		})
	}
}
