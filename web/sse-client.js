/*
 * sse-client.js: the browser client for ssehub (and goSSE).
 *
 * A drop-in for goSSE's browser client (tinyClientSSE's SSEClient.js), same
 * API, same requests on the wire:
 *
 *   var client = new SSEClient("https://sse.example.org", "sse");
 *   client.setCallback(function (event) { console.log(event.data); });
 *   client.withCreds("user", "password", "user-id");  // cookie flow
 *   // or: client.withToken(jwtFromYourBackend, "user-id");
 *
 * The older five-argument form logs in with withCreds when run() is called:
 *
 *   new SSEClient(url, "sse", "user", "password", "user-id").run();
 *
 * and run(url, type, callback, base64Token) opens a stream directly, as
 * tinyClientSSE's own run() does.
 *
 * - withCreds POSTs {"username","password","id"} to url + "/login" with
 *   credentials, so the server's sse_token cookie is stored even across
 *   origins; when that succeeds it opens
 *   new EventSource(url + "/events?type=" + event, {withCredentials: true})
 *   and the cookie goes back with it.
 * - withToken opens url + "/events?type=" + event + "&token=" +
 *   base64(JSON {"token": jwt, "id": id}) with no login round trip.
 * - The callback gets every event: untyped ones through es.onmessage, typed
 *   ones through es.addEventListener(event, ...). `event` may name several
 *   types separated by commas ("a,b"); each gets a listener.
 * - client.es is the EventSource. It reconnects by itself (and sends
 *   Last-Event-ID) when the stream drops; client.close() ends it for good.
 * - A failed login calls client.onLoginError(xhr) when it is set, otherwise
 *   logs a warning; there is no stream to open then.
 *
 * This file is a classic script: it defines the global SSEClient. The ES
 * module form, sse-client.mjs, imports this file and exports that global.
 */
(function (global) {
  "use strict";

  /* btoa() only takes Latin-1; encode the text as UTF-8 bytes first so an id
   * like "zoë" or "用户" survives. For ASCII the result is what btoa gives. */
  function base64Utf8(text) {
    var bytes = new TextEncoder().encode(text);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) {
      binary += String.fromCharCode(bytes[i]);
    }
    return global.btoa(binary);
  }

  function SSEClient(url, event, user, pass, id) {
    this.url = String(url).replace(/\/+$/, "");
    this.event = event;
    this.user = user;
    this.pass = pass;
    this.id = id;
    this.callback = null;
    this.es = null;
    this.onLoginError = null;
    this._login = null; /* the pending withCreds login, if any */
  }

  /* Sets the function called with each received MessageEvent. It may be set
   * before or after the stream is open. Returns the client for chaining. */
  SSEClient.prototype.setCallback = function (fn) {
    this.callback = fn;
    return this;
  };

  /* run(): the older goSSE form, logs in with the credentials given to the
   * constructor. run(url, type, callback, token): tinyClientSSE's own step
   * after login, opens url's stream for that type, with the base64 token
   * when given, delivering to callback. */
  SSEClient.prototype.run = function (url, type, callback, token) {
    if (arguments.length === 0) {
      return this.withCreds(this.user, this.pass, this.id);
    }
    this.url = String(url).replace(/\/+$/, "");
    this.event = type;
    if (callback) {
      this.callback = callback;
    }
    var events = this._eventsUrl();
    return this._open(token ? events + (events.indexOf("?") < 0 ? "?" : "&") + "token=" + token : events);
  };

  /* Logs in (the server answers with the sse_token cookie), then opens the
   * stream, which the browser authenticates with that cookie. */
  SSEClient.prototype.withCreds = function (user, pass, id) {
    var self = this;
    var xhr = new XMLHttpRequest();
    this.close();
    this._login = xhr;
    xhr.open("POST", this.url + "/login");
    xhr.withCredentials = true;
    xhr.setRequestHeader("Content-type", "application/json");
    xhr.onloadend = function () {
      if (self._login !== xhr) {
        return; /* closed, or superseded by another withCreds/withToken */
      }
      self._login = null;
      if (xhr.status >= 200 && xhr.status < 300) {
        self._open(self._eventsUrl());
      } else if (typeof self.onLoginError === "function") {
        self.onLoginError(xhr);
      } else {
        console.warn("SSEClient: login failed with status " + xhr.status);
      }
    };
    xhr.send(JSON.stringify({ username: user, password: pass, id: id }));
    return this;
  };

  /* Opens the stream with a JWT obtained elsewhere (e.g. by your backend's
   * own POST /login); `id` is the user id events can be addressed to. */
  SSEClient.prototype.withToken = function (jwt, id) {
    /* Unescaped like goSSE's client: the server accepts + / = as they are. */
    return this.run(this.url, this.event, null, base64Utf8(JSON.stringify({ token: jwt, id: id })));
  };

  /* Closes the stream (the EventSource will not reconnect) and forgets any
   * login still in flight. */
  SSEClient.prototype.close = function () {
    this._login = null;
    if (this.es) {
      this.es.close();
    }
    return this;
  };

  SSEClient.prototype._types = function () {
    return String(this.event == null ? "" : this.event)
      .split(",")
      .map(function (t) { return t.trim(); })
      .filter(function (t) { return t !== ""; });
  };

  /* url + "/events?type=" + event; with no type at all, every event. */
  SSEClient.prototype._eventsUrl = function () {
    var types = this._types();
    return this.url + "/events" +
      (types.length ? "?type=" + types.map(encodeURIComponent).join(",") : "");
  };

  /* Replaces any previous stream with a new EventSource on `url` and routes
   * its untyped and typed events to the callback. */
  SSEClient.prototype._open = function (url) {
    var self = this;
    this.close();
    var es = new EventSource(url, { withCredentials: true });
    var deliver = function (e) {
      if (typeof self.callback === "function") {
        self.callback(e);
      }
    };
    es.onmessage = deliver;
    this._types().forEach(function (type) {
      /* "message" events already reach onmessage; don't deliver them twice. */
      if (type !== "message") {
        es.addEventListener(type, deliver);
      }
    });
    this.es = es;
    return this;
  };

  global.SSEClient = SSEClient;
})(typeof globalThis !== "undefined" ? globalThis : self);
