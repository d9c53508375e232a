package parser

import (
	"bytes"
	"encoding"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strings"
	"sync"
)

// Binary values inside arbitrary Go values (structs and the like) are
// handled with encoding/json plus markers, so that field names, tags,
// omitempty and custom marshalers behave exactly as in encoding/json.
//
// Encoding: a copy of the value is made along the paths that lead to byte
// slices (the caller's value is never modified), with each byte slice
// replaced by a 15-byte marker: 12 random bytes and a 3-byte index.
// encoding/json writes a marker as a 20-character base64 string. The output
// is then scanned for markers in order, each replaced by a placeholder.
// [Arg] values are replaced by an Arg whose JSON is the same marker string.
//
// Decoding: placeholders in the JSON are replaced by strings that are
// base64 of the buffer preceded by a prefix of '\r' and '\n' characters
// that spells a random nonce and the attachment index. encoding/json
// decodes such a string into a []byte target as the buffer itself, because
// base64 decoding skips '\r' and '\n'. Interface targets get the string,
// which a walk over the result then swaps for the buffer.

var (
	argType             = reflect.TypeFor[Arg]()
	bytesType           = reflect.TypeFor[[]byte]()
	marshalerType       = reflect.TypeFor[json.Marshaler]()
	textMarshalerType   = reflect.TypeFor[encoding.TextMarshaler]()
	unmarshalerType     = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

const (
	markerNonceLen = 12
	markerLen      = markerNonceLen + 3           // bytes
	markerB64Len   = markerLen / 3 * 4            // 20
	markerNonceB64 = markerNonceLen / 3 * 4       // 16
	markerTextLen  = 1 + markerB64Len + 1         // with quotes
	maxMarks       = 1 << 24                      // 3-byte index
	unmarshalBits  = 48                           // nonce bits in a decode marker
	unmarshalIdx   = 32                           // index bits in a decode marker
	unmarshalPfx   = unmarshalBits + unmarshalIdx // prefix length in bytes
)

// A mark is what a marker stands for: a buffer, or an Arg.
type mark struct {
	data  []byte
	arg   Arg
	isArg bool
}

// reflectValue encodes v with encoding/json, turning byte slices into
// placeholders.
func (e *argEncoder) reflectValue(v any, depth int) error {
	rv := reflect.ValueOf(v)
	if mayHaveBinary(rv.Type()) {
		nv, changed, err := e.rewrite(rv, depth)
		if err != nil {
			return err
		}
		if changed {
			v = nv.Interface()
		}
	}
	start := len(e.buf)
	if err := e.encodeJSON(v); err != nil {
		return err
	}
	if len(e.marks) == 0 {
		return nil
	}
	return e.resolveMarks(start)
}

type bufWriter struct{ b []byte }

func (w *bufWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

type pooledEncoder struct {
	w   bufWriter
	enc *json.Encoder
}

var encoderPool = sync.Pool{New: func() any {
	pe := new(pooledEncoder)
	pe.enc = json.NewEncoder(&pe.w)
	pe.enc.SetEscapeHTML(false)
	return pe
}}

// encodeJSON appends v as encoding/json writes it, HTML escaping off.
func (e *argEncoder) encodeJSON(v any) error {
	pe := encoderPool.Get().(*pooledEncoder)
	pe.w.b = e.buf
	err := pe.enc.Encode(v)
	b := pe.w.b
	pe.w.b = nil
	encoderPool.Put(pe)
	if err != nil {
		return err
	}
	if n := len(b); n > len(e.buf) && b[n-1] == '\n' {
		b = b[:n-1]
	}
	e.buf = b
	return nil
}

// addMark records what a new marker stands for and returns the marker.
func (e *argEncoder) addMark(m mark) ([]byte, error) {
	if len(e.marks) >= maxMarks {
		return nil, errorf(errUnsupportedValue, "too many binary values")
	}
	if e.nonce == nil {
		e.nonce = newNonce(markerNonceLen)
		e.pat = make([]byte, 1+markerNonceB64)
		e.pat[0] = '"'
		base64.StdEncoding.Encode(e.pat[1:], e.nonce)
	}
	i := len(e.marks)
	e.marks = append(e.marks, m)
	marker := make([]byte, markerLen)
	copy(marker, e.nonce)
	marker[markerNonceLen] = byte(i >> 16)
	marker[markerNonceLen+1] = byte(i >> 8)
	marker[markerNonceLen+2] = byte(i)
	return marker, nil
}

// resolveMarks replaces the markers in e.buf[start:] with placeholders, or
// with the JSON of the Args they stand for.
func (e *argEncoder) resolveMarks(start int) error {
	region := bytes.Clone(e.buf[start:])
	e.buf = e.buf[:start]
	pos := 0
	for {
		k := bytes.Index(region[pos:], e.pat)
		if k < 0 {
			break
		}
		k += pos
		var idx [3]byte
		if k+markerTextLen > len(region) || region[k+markerTextLen-1] != '"' {
			return errorf(errUnsupportedValue, "corrupted binary marker")
		}
		if _, err := base64.StdEncoding.Decode(idx[:], region[k+1+markerNonceB64:k+markerTextLen-1]); err != nil {
			return errorf(errUnsupportedValue, "corrupted binary marker")
		}
		i := int(idx[0])<<16 | int(idx[1])<<8 | int(idx[2])
		if i >= len(e.marks) {
			return errorf(errUnsupportedValue, "corrupted binary marker")
		}
		e.buf = append(e.buf, region[pos:k]...)
		if m := e.marks[i]; m.isArg {
			if err := e.appendArg(m.arg); err != nil {
				return err
			}
		} else {
			e.appendBinary(m.data)
		}
		pos = k + markerTextLen
	}
	e.buf = append(e.buf, region[pos:]...)
	e.marks = e.marks[:0]
	return nil
}

// rewrite returns v with every byte slice and every Arg holding
// placeholders replaced by a marker. changed is false if there was none,
// and v is then returned as is. Only the paths leading to replacements are
// copied.
func (e *argEncoder) rewrite(v reflect.Value, depth int) (reflect.Value, bool, error) {
	if depth > maxDepth {
		return v, false, errorf(errUnsupportedValue, "value nested too deeply (cyclic?)")
	}
	t := v.Type()
	if t == argType {
		a := v.Interface().(Arg)
		if len(a.Attachments) == 0 {
			return v, false, nil
		}
		marker, err := e.addMark(mark{arg: a, isArg: true})
		if err != nil {
			return v, false, err
		}
		lit := make([]byte, 0, markerTextLen)
		lit = append(lit, '"')
		lit = base64.StdEncoding.AppendEncode(lit, marker)
		lit = append(lit, '"')
		return reflect.ValueOf(Arg{JSON: lit}), true, nil
	}
	if !mayHaveBinary(t) {
		return v, false, nil
	}
	switch t.Kind() {
	case reflect.Interface, reflect.Pointer:
		if v.IsNil() {
			return v, false, nil
		}
		nv, changed, err := e.rewrite(v.Elem(), depth+1)
		if err != nil || !changed {
			return v, false, err
		}
		var out reflect.Value
		if t.Kind() == reflect.Pointer {
			out = reflect.New(t.Elem())
			out.Elem().Set(nv)
		} else {
			out = reflect.New(t).Elem()
			out.Set(nv)
		}
		return out, true, nil

	case reflect.Slice:
		if v.IsNil() {
			return v, false, nil
		}
		if isByteSlice(t) {
			marker, err := e.addMark(mark{data: v.Bytes()})
			if err != nil {
				return v, false, err
			}
			return reflect.ValueOf(marker).Convert(t), true, nil
		}
		var out reflect.Value
		for i := range v.Len() {
			nv, changed, err := e.rewrite(v.Index(i), depth+1)
			if err != nil {
				return v, false, err
			}
			if changed {
				if !out.IsValid() {
					out = reflect.MakeSlice(t, v.Len(), v.Len())
					reflect.Copy(out, v)
				}
				out.Index(i).Set(nv)
			}
		}
		if out.IsValid() {
			return out, true, nil
		}

	case reflect.Array:
		var out reflect.Value
		for i := range v.Len() {
			nv, changed, err := e.rewrite(v.Index(i), depth+1)
			if err != nil {
				return v, false, err
			}
			if changed {
				if !out.IsValid() {
					out = reflect.New(t).Elem()
					out.Set(v)
				}
				out.Index(i).Set(nv)
			}
		}
		if out.IsValid() {
			return out, true, nil
		}

	case reflect.Map:
		if v.IsNil() {
			return v, false, nil
		}
		var out reflect.Value
		iter := v.MapRange()
		for iter.Next() {
			nv, changed, err := e.rewrite(iter.Value(), depth+1)
			if err != nil {
				return v, false, err
			}
			if changed {
				if !out.IsValid() {
					out = reflect.MakeMapWithSize(t, v.Len())
					all := v.MapRange()
					for all.Next() {
						out.SetMapIndex(all.Key(), all.Value())
					}
				}
				out.SetMapIndex(iter.Key(), nv)
			}
		}
		if out.IsValid() {
			return out, true, nil
		}

	case reflect.Struct:
		out := reflect.New(t).Elem()
		out.Set(v)
		changed, err := e.rewriteFields(out, v, depth+1)
		if err != nil || !changed {
			return v, false, err
		}
		return out, true, nil
	}
	return v, false, nil
}

// rewriteFields rewrites the fields of struct src into the addressable
// copy dst, descending into embedded structs of unexported types, whose
// exported fields encoding/json promotes.
func (e *argEncoder) rewriteFields(dst, src reflect.Value, depth int) (bool, error) {
	t := src.Type()
	changedAny := false
	for i := range t.NumField() {
		f := t.Field(i)
		if !jsonField(f) {
			continue
		}
		if !f.IsExported() {
			// Embedded struct of an unexported type: dst.Field(i) cannot be
			// set as a whole, but its exported fields can.
			changed, err := e.rewriteFields(dst.Field(i), src.Field(i), depth+1)
			if err != nil {
				return false, err
			}
			changedAny = changedAny || changed
			continue
		}
		nv, changed, err := e.rewrite(src.Field(i), depth)
		if err != nil {
			return false, err
		}
		if changed {
			dst.Field(i).Set(nv)
			changedAny = true
		}
	}
	return changedAny, nil
}

// jsonField reports whether encoding/json may encode or decode field f:
// exported fields and embedded non-pointer structs, unless tagged "-".
// (Pointers to unexported embedded structs are left alone.)
func jsonField(f reflect.StructField) bool {
	if f.Tag.Get("json") == "-" {
		return false
	}
	return f.IsExported() || f.Anonymous && f.Type.Kind() == reflect.Struct
}

func isByteSlice(t reflect.Type) bool {
	if t.Kind() != reflect.Slice || t.Elem().Kind() != reflect.Uint8 {
		return false
	}
	p := reflect.PointerTo(t.Elem())
	return !p.Implements(marshalerType) && !p.Implements(textMarshalerType)
}

func isMarshaler(t reflect.Type) bool {
	if t.Implements(marshalerType) || t.Implements(textMarshalerType) {
		return true
	}
	p := reflect.PointerTo(t)
	return p.Implements(marshalerType) || p.Implements(textMarshalerType)
}

func isUnmarshaler(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	return p.Implements(unmarshalerType) || p.Implements(textUnmarshalerType)
}

// typeCache memoizes a static property of types. Only the result for the
// type asked about is stored: results for types met while a recursive type
// is still being examined may be incomplete.
type typeCache struct {
	m    sync.Map // reflect.Type → bool
	test func(t reflect.Type, seen map[reflect.Type]bool) bool
}

func (c *typeCache) get(t reflect.Type) bool {
	if r, ok := c.m.Load(t); ok {
		return r.(bool)
	}
	r := c.test(t, map[reflect.Type]bool{})
	c.m.Store(t, r)
	return r
}

var binaryTypes, bytesTargets, ifaceTargets typeCache

func init() {
	binaryTypes.test = hasBinary
	bytesTargets.test = holdsBytes
	ifaceTargets.test = holdsInterface
}

// mayHaveBinary reports whether values of type t may hold a byte slice or
// an Arg that encoding/json would reach.
func mayHaveBinary(t reflect.Type) bool { return binaryTypes.get(t) }

func hasBinary(t reflect.Type, seen map[reflect.Type]bool) bool {
	if t == argType {
		return true
	}
	switch t.Kind() {
	case reflect.Pointer:
		return hasBinary(t.Elem(), seen)
	case reflect.Interface:
		return !isMarshaler(t) // an interface with MarshalJSON is encoded by it
	}
	if isMarshaler(t) {
		return false
	}
	switch t.Kind() {
	case reflect.Slice:
		return isByteSlice(t) || hasBinary(t.Elem(), seen)
	case reflect.Array, reflect.Map:
		return hasBinary(t.Elem(), seen)
	case reflect.Struct:
		return anyField(t, seen, hasBinary)
	}
	return false
}

// holdsBytes reports whether decoding into t may store a byte slice from
// a base64 string.
func holdsBytes(t reflect.Type, seen map[reflect.Type]bool) bool {
	if t.Kind() == reflect.Pointer {
		return holdsBytes(t.Elem(), seen)
	}
	if t.Kind() == reflect.Interface || isUnmarshaler(t) {
		return false
	}
	switch t.Kind() {
	case reflect.Slice:
		return t.Elem().Kind() == reflect.Uint8 && !isUnmarshaler(t.Elem()) || holdsBytes(t.Elem(), seen)
	case reflect.Array, reflect.Map:
		return holdsBytes(t.Elem(), seen)
	case reflect.Struct:
		return anyField(t, seen, holdsBytes)
	}
	return false
}

// holdsInterface reports whether decoding into t may store a string in
// an empty interface.
func holdsInterface(t reflect.Type, seen map[reflect.Type]bool) bool {
	if t.Kind() == reflect.Pointer {
		return holdsInterface(t.Elem(), seen)
	}
	if t.Kind() == reflect.Interface {
		return t.NumMethod() == 0
	}
	if isUnmarshaler(t) {
		return false
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array, reflect.Map:
		return holdsInterface(t.Elem(), seen)
	case reflect.Struct:
		return anyField(t, seen, holdsInterface)
	}
	return false
}

func anyField(t reflect.Type, seen map[reflect.Type]bool, test func(reflect.Type, map[reflect.Type]bool) bool) bool {
	if seen[t] {
		return false
	}
	seen[t] = true
	for i := range t.NumField() {
		f := t.Field(i)
		if jsonField(f) && test(f.Type, seen) {
			return true
		}
	}
	return false
}

// binaryDecoder holds the state of one UnmarshalArg call.
type binaryDecoder struct {
	atts   [][]byte
	prefix string // the nonce part of markers, as decoded strings carry it
}

// unmarshalWithBinary implements UnmarshalArg when raw has placeholders.
func unmarshalWithBinary(raw []byte, atts [][]byte, phs []placeholder, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return json.Unmarshal(raw, v) // reports the InvalidUnmarshalError
	}
	t := rv.Type().Elem()
	wantBytes, wantIface := bytesTargets.get(t), ifaceTargets.get(t)
	if !wantBytes && !wantIface {
		return json.Unmarshal(raw, v)
	}
	d := binaryDecoder{atts: atts}
	if wantIface {
		nonce := newNonce(unmarshalBits / 8)
		var pfx strings.Builder
		pfx.Grow(unmarshalBits)
		for i := range unmarshalBits {
			pfx.WriteByte(crlf(nonce[i/8] >> (i % 8)))
		}
		d.prefix = pfx.String()
	}

	size := len(raw)
	for _, ph := range phs {
		size += 2
		if wantIface {
			size += 2 * unmarshalPfx
		}
		if wantBytes {
			size += base64.StdEncoding.EncodedLen(len(atts[ph.num]))
		}
	}
	out := make([]byte, 0, size)
	pos := 0
	for _, ph := range phs {
		out = append(out, raw[pos:ph.start]...)
		out = append(out, '"')
		if wantIface {
			for i := range unmarshalBits {
				out = append(out, '\\', escapeCRLF(d.prefix[i]))
			}
			for i := range unmarshalIdx {
				out = append(out, '\\', escapeCRLF(crlf(byte(ph.num>>i))))
			}
		}
		if wantBytes {
			out = base64.StdEncoding.AppendEncode(out, atts[ph.num])
		}
		out = append(out, '"')
		pos = ph.end
	}
	out = append(out, raw[pos:]...)
	if err := json.Unmarshal(out, v); err != nil {
		return err
	}
	if wantIface {
		d.fix(rv.Elem(), 0)
	}
	return nil
}

func crlf(bit byte) byte {
	if bit&1 == 0 {
		return '\r'
	}
	return '\n'
}

func escapeCRLF(c byte) byte {
	if c == '\r' {
		return 'r'
	}
	return 'n'
}

// lookup returns the attachment a decoded marker string stands for.
func (d *binaryDecoder) lookup(s string) ([]byte, bool) {
	if len(s) < unmarshalPfx || s[:unmarshalBits] != d.prefix {
		return nil, false
	}
	idx := 0
	for i := range unmarshalIdx {
		switch s[unmarshalBits+i] {
		case '\n':
			idx |= 1 << i
		case '\r':
		default:
			return nil, false
		}
	}
	if idx >= len(d.atts) {
		return nil, false
	}
	return d.atts[idx], true
}

// fix swaps marker strings held in interfaces within v for their buffers.
func (d *binaryDecoder) fix(v reflect.Value, depth int) {
	if depth > maxDepth || !ifaceTargets.get(v.Type()) {
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			d.fix(v.Elem(), depth+1)
		}
	case reflect.Interface:
		if v.IsNil() {
			return
		}
		switch e := v.Elem(); e.Kind() {
		case reflect.String:
			if b, ok := d.lookup(e.String()); ok && v.CanSet() && bytesType.AssignableTo(v.Type()) {
				v.Set(reflect.ValueOf(b))
			}
		case reflect.Map, reflect.Slice, reflect.Pointer:
			d.fix(e, depth+1)
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			if f := t.Field(i); jsonField(f) {
				d.fix(v.Field(i), depth+1)
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			d.fix(v.Index(i), depth+1)
		}
	case reflect.Map:
		et := v.Type().Elem()
		for _, k := range v.MapKeys() {
			val := v.MapIndex(k)
			switch et.Kind() {
			case reflect.Interface:
				if val.IsNil() {
					continue
				}
				e := val.Elem()
				if e.Kind() == reflect.String {
					if b, ok := d.lookup(e.String()); ok && bytesType.AssignableTo(et) {
						v.SetMapIndex(k, reflect.ValueOf(b))
					}
				} else {
					d.fix(e, depth+1)
				}
			case reflect.Map, reflect.Slice, reflect.Pointer:
				d.fix(val, depth+1)
			default: // struct or array values are not addressable: fix a copy
				c := reflect.New(et).Elem()
				c.Set(val)
				d.fix(c, depth+1)
				v.SetMapIndex(k, c)
			}
		}
	}
}
