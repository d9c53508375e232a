package engineio

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
)

// A session id is "<node id>-<20 random characters>": the random part is 15
// bytes (120 bits) from crypto/rand in unpadded base64url, and the node id
// (letters and digits only, so the first '-' ends it) names the node that
// owns the session. Any node, and a balancer, can therefore route a request
// to the owner without a shared table.
const sidRandomBytes = 15

// SessionNodeID returns the node id carried by a session id, and false if sid
// is not in Herald's format.
func SessionNodeID(sid string) (string, bool) {
	i := strings.IndexByte(sid, '-')
	if i <= 0 || len(sid)-i-1 != base64.RawURLEncoding.EncodedLen(sidRandomBytes) {
		return "", false
	}
	if !validNodeID(sid[:i]) {
		return "", false
	}
	return sid[:i], true
}

func newSessionID(nodeID string) string {
	var b [sidRandomBytes]byte
	rand.Read(b[:]) // never fails (crypto/rand documents a panic-free read since Go 1.24)
	out := make([]byte, 0, len(nodeID)+1+base64.RawURLEncoding.EncodedLen(sidRandomBytes))
	out = append(out, nodeID...)
	out = append(out, '-')
	return string(base64.RawURLEncoding.AppendEncode(out, b[:]))
}

// RandomNodeID returns a fresh random node id of 8 letters and digits.
func RandomNodeID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	var b [8]byte
	rand.Read(b[:])
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b[:])
}

func validNodeID(id string) bool {
	if len(id) == 0 || len(id) > 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// ValidateNodeID reports whether id can be used as Config.NodeID.
func ValidateNodeID(id string) error {
	if !validNodeID(id) {
		return fmt.Errorf("engineio: invalid node id %q: want 1 to 32 letters or digits", id)
	}
	return nil
}
