// Package herald is a Socket.IO v5 server for Go that is built to run on many
// nodes. It speaks Engine.IO v4 (and v3 on request) through package engineio,
// encodes packets with package parser, and shares broadcasts across nodes
// through an adapter.
//
// The Socket.IO server API (Server, Namespace, Socket) is being built; until
// it lands, package engineio is the usable layer.
package herald
