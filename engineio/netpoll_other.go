//go:build !linux

package engineio

import "time"

// Without epoll a WebSocket reader stays blocked in Read while idle.

func (c *wsConn) park(*Session) bool { return false }

func (c *wsConn) unpark() {}

func (c *wsConn) tryWrite([]byte) int { return 0 }

func (c *wsConn) tryWritev([][]byte) int { return 0 }

// parkDelay is unused without a poller; netpoll_linux.go explains it.
var parkDelay time.Duration
