package cliflags

import (
	"flag"
	"net"
	"testing"
)

func TestDefaultAdvertiseURL(t *testing.T) {
	tests := []struct{ listen, want string }{
		{"0.0.0.0:3000", "http://127.0.0.1:3000"},
		{"[::]:3000", "http://127.0.0.1:3000"},
		{"127.0.0.1:3001", "http://127.0.0.1:3001"},
		{"10.1.2.3:80", "http://10.1.2.3:80"},
		{"[::1]:3002", "http://[::1]:3002"},
	}
	for _, tc := range tests {
		addr, err := net.ResolveTCPAddr("tcp", tc.listen)
		if err != nil {
			t.Fatal(err)
		}
		if got := DefaultAdvertiseURL(addr); got != tc.want {
			t.Errorf("DefaultAdvertiseURL(%s) = %q, want %q", tc.listen, got, tc.want)
		}
	}
}

func TestValidateClusterFlags(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr bool
	}{
		{nil, false},
		{[]string{"--peers", "a=http://127.0.0.1:1,b=http://127.0.0.1:2", "--node-id", "a"}, false},
		{[]string{"--peers", "a=127.0.0.1:1"}, true},
		{[]string{"--node-id", "not-valid"}, true},
		{[]string{"--drain-delay", "-1s"}, true},
	}
	for _, tc := range tests {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		s := Register(fs, Defaults{Addr: ":0", PingInterval: 1, PingTimeout: 1, MaxPayload: 1})
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		if err := s.Validate(); (err != nil) != tc.wantErr {
			t.Errorf("%v: Validate() = %v, want error: %v", tc.args, err, tc.wantErr)
		}
	}
}
