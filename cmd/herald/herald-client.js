/*
 * herald-client.js: a small, dependency-free Socket.IO v5 client for browsers.
 *
 *   const socket = herald.connect();                  // same origin, namespace "/"
 *   const socket = herald.connect("http://host:3000/admin", { auth: { token: "t" } });
 *   socket.on("connect", () => console.log("connected as", socket.id));
 *   socket.on("disconnect", (reason) => ...);        // "io server disconnect", "transport close", "ping timeout", ...
 *   socket.on("connect_error", (err) => ...);        // err.message, err.data
 *   socket.on("said", (msg, ack) => ...);            // ack is a function when the server asked for one
 *   socket.emit("join", "blue", "alice", (reply) => ...); // a function as last argument asks for an ack
 *   socket.off("said", fn); socket.disconnect(); socket.connect();
 *   socket.id, socket.connected
 *
 * Options: auth (object, or function returning one), path (default "/socket.io/"),
 * reconnection (default true), reconnectionDelay (500 ms), reconnectionDelayMax (5000 ms).
 *
 * Wire protocol. Transport: one WebSocket to <path>?EIO=4&transport=websocket, one
 * Engine.IO packet per text frame: "0{json}" open (sid, pingInterval, pingTimeout),
 * "1" close, "2" ping (answered "3"), "4..." message, "6" noop. The link is considered
 * dead when no ping arrives within pingInterval + pingTimeout.
 * Each message holds one Socket.IO packet: type digit, then "/nsp," unless the namespace
 * is "/", then an optional ack id (digits), then JSON:
 *   40{auth} CONNECT -> 40{"sid":...}  or  44{"message","data"} CONNECT_ERROR
 *   41 DISCONNECT      42<id>["event",...args] EVENT      43<id>[...args] ACK
 * Emits made while disconnected are queued and sent after the next CONNECT.
 * After a dropped connection the client reconnects with exponential backoff and
 * jitter; it does not after a server "41", a CONNECT_ERROR, or disconnect().
 * Binary payloads (types 5 and 6) are not supported.
 */
(function (global) {
  "use strict";

  var RESERVED = { connect: 1, connect_error: 1, disconnect: 1, disconnecting: 1, newListener: 1, removeListener: 1 };

  function Socket(url, opts) {
    opts = opts || {};
    var loc = global.location;
    var u = new URL(url || "/", loc ? loc.href : undefined);
    this.nsp = url && u.pathname !== "" ? u.pathname : "/";
    u.protocol = u.protocol === "https:" || u.protocol === "wss:" ? "wss:" : "ws:";
    u.pathname = opts.path || "/socket.io/";
    u.search = "?EIO=4&transport=websocket";
    u.hash = "";
    this.url = u.toString();
    this.opts = opts;
    this.id = undefined;
    this.connected = false;
    this._handlers = {};
    this._acks = {};
    this._ackId = 0;
    this._queue = [];
    this._attempts = 0;
    this._ws = null;
    this._timer = null;      // reconnect timer
    this._pingTimer = null;  // heartbeat watchdog
    this._active = false;    // true while we want to be connected
    this.connect();
  }

  var P = Socket.prototype;

  P.on = function (event, fn) {
    (this._handlers[event] = this._handlers[event] || []).push(fn);
    return this;
  };

  P.off = function (event, fn) {
    var list = this._handlers[event];
    if (list) this._handlers[event] = fn ? list.filter(function (f) { return f !== fn; }) : [];
    return this;
  };

  // _call runs user code; its exceptions are rethrown later so they cannot break the client.
  P._call = function (fn, args) {
    try { fn.apply(this, args); } catch (e) { setTimeout(function () { throw e; }); }
  };

  P._fire = function (event, args) {
    var list = (this._handlers[event] || []).slice();
    for (var i = 0; i < list.length; i++) this._call(list[i], args);
  };

  P.emit = function (event) {
    if (RESERVED[event]) throw new Error('"' + event + '" is a reserved event name');
    var args = Array.prototype.slice.call(arguments);
    var id = "";
    if (typeof args[args.length - 1] === "function") {
      id = String(this._ackId++);
      this._acks[id] = args.pop();
    }
    var pkt = "2" + this._prefix() + id + JSON.stringify(args);
    if (this.connected) this._send(pkt); else this._queue.push(pkt);
    return this;
  };

  P.connect = function () {
    if (this._ws) return this;
    this._active = true;
    clearTimeout(this._timer);
    var self = this, ws;
    try {
      ws = this._ws = new WebSocket(this.url);
    } catch (e) {
      this._ws = null;
      this._fire("connect_error", [e]);
      this._reconnect();
      return this;
    }
    ws.onmessage = function (ev) {
      if (ws !== self._ws || typeof ev.data !== "string") return;
      try { self._onEngine(ev.data); } catch (e) { self._lost("parse error"); }
    };
    ws.onclose = function () { if (ws === self._ws) self._lost(self.connected ? "transport close" : null); };
    ws.onerror = function () { if (ws === self._ws) self._lost(self.connected ? "transport error" : null); };
    return this;
  };

  P.disconnect = function () {
    this._active = false;
    clearTimeout(this._timer);
    if (this._ws && this.connected) this._send("1" + this._prefix());
    this._teardown("io client disconnect");
    return this;
  };
  P.close = P.disconnect;
  P._prefix = function () { return this.nsp === "/" ? "" : this.nsp + ","; };

  P._send = function (pkt) {
    if (this._ws && this._ws.readyState === 1) this._ws.send("4" + pkt);
  };

  // _lost handles an unexpected end of the transport; reason is null if we never connected.
  P._lost = function (reason) {
    if (reason) this._teardown(reason);
    else {
      this._teardown(null);
      this._fire("connect_error", [new Error("websocket error")]);
    }
    this._reconnect();
  };

  // _teardown closes the WebSocket and, if a Socket.IO session was up, reports it.
  P._teardown = function (reason) {
    var ws = this._ws, was = this.connected;
    this._ws = null;
    this.connected = false;
    this.id = undefined;
    clearTimeout(this._pingTimer);
    if (ws) {
      ws.onmessage = ws.onclose = ws.onerror = null;
      try { ws.close(); } catch (e) {}
    }
    if (was && reason) this._fire("disconnect", [reason]);
  };

  P._reconnect = function () {
    if (!this._active || this.opts.reconnection === false) return;
    var min = this.opts.reconnectionDelay || 500, max = this.opts.reconnectionDelayMax || 5000;
    var delay = Math.min(max, min * Math.pow(2, this._attempts++));
    delay = Math.round(delay * (0.5 + Math.random() * 0.5));
    var self = this;
    clearTimeout(this._timer);
    this._timer = setTimeout(function () { self.connect(); }, delay);
  };

  P._heartbeat = function () {
    var self = this;
    clearTimeout(this._pingTimer);
    this._pingTimer = setTimeout(function () {
      self._teardown("ping timeout");
      self._reconnect();
    }, this._pingInterval + this._pingTimeout);
  };

  P._onEngine = function (data) {
    switch (data.charAt(0)) {
      case "0": // open
        var open = JSON.parse(data.slice(1));
        this._pingInterval = open.pingInterval || 25000;
        this._pingTimeout = open.pingTimeout || 20000;
        this._heartbeat();
        var auth = typeof this.opts.auth === "function" ? this.opts.auth() : this.opts.auth;
        this._send("0" + this._prefix() + (auth ? JSON.stringify(auth) : ""));
        break;
      case "1": // close
        this._lost("transport close");
        break;
      case "2": // ping
        this._heartbeat();
        this._ws.send("3");
        break;
      case "4":
        this._onPacket(data.slice(1));
        break;
    }
  };

  P._onPacket = function (s) {
    var type = s.charAt(0), i = 1, nsp = "/";
    if (s.charAt(i) === "/") {
      var comma = s.indexOf(",", i);
      if (comma < 0) comma = s.length;
      nsp = s.slice(i, comma);
      i = comma + 1;
    }
    if (nsp !== this.nsp) return;
    var start = i;
    while (i < s.length && s.charAt(i) >= "0" && s.charAt(i) <= "9") i++;
    var id = i > start ? s.slice(start, i) : null;
    var body = i < s.length ? JSON.parse(s.slice(i)) : undefined; // a bad packet throws: "parse error"
    switch (type) {
      case "0": // CONNECT reply
        this.id = body && body.sid;
        this.connected = true;
        this._attempts = 0;
        var q = this._queue;
        this._queue = [];
        this._fire("connect", []);
        for (var k = 0; k < q.length; k++) this._send(q[k]);
        break;
      case "1": // server-side disconnect: no reconnection
        this._active = false;
        this._teardown("io server disconnect");
        break;
      case "2": // EVENT
        if (!Array.isArray(body) || !body.length) return;
        var args = body.slice(1);
        if (id !== null) {
          var self = this, sent = false;
          args.push(function () {
            if (sent) return;
            sent = true;
            self._send("3" + self._prefix() + id + JSON.stringify(Array.prototype.slice.call(arguments)));
          });
        }
        this._fire(String(body[0]), args);
        break;
      case "3": // ACK
        var fn = this._acks[id];
        if (fn) {
          delete this._acks[id];
          this._call(fn, Array.isArray(body) ? body : []);
        }
        break;
      case "4": // CONNECT_ERROR: reported, no automatic retry
        var err = new Error(body && body.message || String(body));
        if (body && body.data !== undefined) err.data = body.data;
        this._active = false;
        this._teardown(null);
        this._fire("connect_error", [err]);
        break;
    }
  };

  global.herald = { connect: function (url, opts) { return new Socket(url, opts); }, Socket: Socket };
})(typeof window !== "undefined" ? window : globalThis);
