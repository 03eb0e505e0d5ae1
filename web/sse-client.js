/*
 * sse-client.js: the browser client for ssehub (and goSSE).
 *
 * A drop-in for goSSE's browser client (tinyClientSSE's SSEClient.js), same
 * API, same requests on the wire, plus token renewal, resume and backoff.
 *
 * The safe flow: your backend logs its user in, asks ssehub's POST /token for
 * a token bound to that user and hands it to the page; the page asks its
 * backend again whenever the token runs out:
 *
 *   var client = new SSEClient("https://sse.example.org", "sse");
 *   client.setCallback(function (event) { console.log(event.type, event.data); });
 *   client.getToken = function () {            // a Promise of a JWT, or of {token, id}
 *     return fetch("/sse-token", { method: "POST" }).then(function (r) { return r.json(); });
 *   };
 *   client.withToken();                       // no arguments: asks getToken first
 *   // or, with a token already in the page: client.withToken(jwt, "user-id");
 *
 * goSSE's forms work unchanged:
 *
 *   client.withCreds("user", "password", "user-id");  // cookie flow (trusted pages only)
 *   new SSEClient(url, "sse", "user", "password", "user-id").run();
 *   client.run(url, type, callback, base64Token);      // tinyClientSSE's own run()
 *
 * On the wire:
 * - withCreds POSTs {"username","password","id"} to url + "/login" with
 *   credentials, so the server's sse_token cookie is stored even across
 *   origins; when that succeeds it opens
 *   new EventSource(url + "/events?type=" + event, {withCredentials: true})
 *   and the cookie goes back with it.
 * - withToken opens url + "/events?type=" + event + "&token=" +
 *   base64(JSON {"token": jwt, "id": id}) with no login round trip.
 * - A stream the client opens after it has seen events (renewal, its own
 *   reconnection, a later withToken or withCreds on the same client) adds
 *   "&lastEventId=<last id seen>": a new EventSource sends no Last-Event-ID
 *   header, and ssehub takes the resume point from that parameter instead, so
 *   nothing is missed and nothing comes twice. client.lastEventId holds that
 *   id (a page may set it before connecting, or set it to "" to start live).
 *
 * Events. EventSource gives a named event only to listeners for that name,
 * and has no catch-all. The client listens for: untyped events (onmessage),
 * every type in `event` ("a,b" names several), ssehub's own "reset" and
 * "token-expired", and every name given to client.listen(name, ...). Each of
 * them reaches the callback; e.type tells which. Use listen() for the types an
 * event addressed to the user may carry without the stream having asked for
 * them (ssehub sends a user's events whatever their type), and, on a stream
 * without a type filter, for every type your backend publishes.
 *
 * Hooks (properties, set them before connecting):
 * - getToken(): returns a Promise of a JWT or of {token, id}. Called on
 *   "token-expired" and when the server refuses a reconnection with 401;
 *   the client then reconnects with the new token after the last id it saw.
 *   A rejected Promise is tried again with the backoff; one that resolves to
 *   no token (null: the user signed out, say) stops the client (onError).
 *   Without getToken, a withCreds client logs in again with its credentials,
 *   and a withToken client stops (onError).
 * - onReset(oldest, latest, event): the "reset" event, sent when the resume
 *   point is older than the server's history or newer than any id: events
 *   oldest..latest can be listed with GET /notifications.
 * - onError(err): err is an Error with err.reason ("disconnected",
 *   "unreachable", "unauthorized", "refused", "token", "expired", "login"),
 *   err.status (the HTTP status when known, else 0), err.willRetry, and
 *   err.retryIn (ms, when the client itself schedules the next attempt).
 * - onOpen(event): each time a stream opens (the first, and after each
 *   reconnection or renewal).
 * - onLoginError(xhr): a failed withCreds login (goSSE's hook); without it a
 *   warning is logged. There is no stream then.
 *
 * Reconnection rule. When an open stream drops, the browser reconnects once
 * by itself after the server's "retry:" delay (with Last-Event-ID). If that
 * fails too, the server is down: the client closes the EventSource and opens
 * a new one after an exponential backoff with jitter (between half and all of
 * retryMin * 2^(n-1), capped at retryMax: 1 s, 2 s, 4 s ... 30 s by default),
 * back to the start after a successful open. When the browser gives up by
 * itself (the server answered something other than a stream), the client asks
 * the same URL once with fetch to learn the status: 401 gets a new token (or
 * login), then reconnects; 400, 403 and 404 stop the client (onError); any
 * other answer is retried with the backoff.
 *
 * client.es is the current EventSource. The client replaces it when it
 * reconnects by itself or renews a token; the listeners and the onopen,
 * onerror and onmessage handlers a page put on client.es move to the new one.
 * client.close() ends the stream for good.
 *
 * This file is a classic script: it defines the global SSEClient. The ES
 * module form, sse-client.mjs, imports this file and exports that global.
 */
(function (global) {
  "use strict";

  /* Events ssehub itself sends on a stream, whatever types it asked for. */
  var SERVER_EVENTS = ["reset", "token-expired"];

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

  function splitNames(value) {
    return String(value == null ? "" : value)
      .split(",")
      .map(function (t) { return t.trim(); })
      .filter(function (t) { return t !== ""; });
  }

  function clientError(reason, message, status) {
    var err = new Error(message);
    err.reason = reason;
    err.status = status || 0;
    err.willRetry = false;
    err.retryIn = undefined;
    return err;
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
    this.getToken = null;
    this.onReset = null;
    this.onError = null;
    this.onOpen = null;
    this.lastEventId = "";
    this.retryMin = 1000;
    this.retryMax = 30000;
    this._login = null;     /* the pending withCreds login, if any */
    this._mode = null;      /* "creds", "token" or "cookie" (run() without a token) */
    this._wrapped = null;   /* token mode: the base64 {"token","id"} parameter */
    this._extra = [];       /* names given to listen() */
    this._failures = 0;     /* failed attempts since the last open */
    this._timer = null;     /* the pending backoff reconnection */
    this._renewNext = false; /* the next attempt fetches a token (or logs in) first */
    this._gen = 0;          /* bumped by each new stream and by close(): late callbacks drop out */
    this._pageListeners = []; /* listeners the page added to client.es */
    var self = this;
    this._deliver = function (e) { self._received(e); };
  }

  /* Sets the function called with each received MessageEvent. It may be set
   * before or after the stream is open. Returns the client for chaining. */
  SSEClient.prototype.setCallback = function (fn) {
    this.callback = fn;
    return this;
  };

  /* Also delivers events with these names to the callback (see "Events"
   * above); applies to the open stream and the next ones. Returns the client. */
  SSEClient.prototype.listen = function () {
    for (var i = 0; i < arguments.length; i++) {
      var names = splitNames(arguments[i]);
      for (var k = 0; k < names.length; k++) {
        if (this._extra.indexOf(names[k]) < 0 && this._names().indexOf(names[k]) < 0) {
          this._extra.push(names[k]);
          if (this.es && names[k] !== "message") {
            EventSource.prototype.addEventListener.call(this.es, names[k], this._deliver);
          }
        }
      }
    }
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
    this._start(token ? "token" : "cookie");
    this._wrapped = token || null;
    this._open();
    return this;
  };

  /* Logs in (the server answers with the sse_token cookie), then opens the
   * stream, which the browser authenticates with that cookie. */
  SSEClient.prototype.withCreds = function (user, pass, id) {
    this.user = user;
    this.pass = pass;
    this.id = id;
    this._start("creds");
    this._logIn();
    return this;
  };

  /* Opens the stream with a JWT obtained elsewhere (from your backend, which
   * got it from POST /token); `id` is the user id events can be addressed to.
   * With no arguments, asks getToken() for the token first. */
  SSEClient.prototype.withToken = function (jwt, id) {
    this._start("token");
    if (arguments.length === 0 && typeof this.getToken === "function") {
      this._renew();
      return this;
    }
    this._useToken(jwt, id);
    this._open();
    return this;
  };

  /* Closes the stream (the EventSource will not reconnect) and forgets any
   * login, token request or reconnection still pending. */
  SSEClient.prototype.close = function () {
    this._gen++;
    this._login = null;
    if (this._timer) {
      clearTimeout(this._timer);
      this._timer = null;
    }
    if (this.es) {
      this.es.close();
    }
    return this;
  };

  /* A new stream asked for by the page: nothing pending carries over, and
   * listeners put on the previous client.es stay with it. */
  SSEClient.prototype._start = function (mode) {
    this.close();
    this._mode = mode;
    this._failures = 0;
    this._renewNext = false;
    this._pageListeners = [];
  };

  SSEClient.prototype._useToken = function (jwt, id) {
    this.id = id;
    /* Unescaped like goSSE's client: the server accepts + / = as they are. */
    this._wrapped = base64Utf8(JSON.stringify({ token: jwt, id: id }));
  };

  SSEClient.prototype._types = function () {
    return splitNames(this.event);
  };

  /* Every event name the client listens for, "message" aside (onmessage). */
  SSEClient.prototype._names = function () {
    var all = this._types().concat(SERVER_EVENTS, this._extra);
    return all.filter(function (t, i) { return t !== "message" && all.indexOf(t) === i; });
  };

  /* url + "/events?type=" + event; with no type at all, every event. */
  SSEClient.prototype._eventsUrl = function () {
    var types = this._types();
    return this.url + "/events" +
      (types.length ? "?type=" + types.map(encodeURIComponent).join(",") : "");
  };

  /* The events URL with the token and the resume point, when there are any. */
  SSEClient.prototype._streamUrl = function () {
    var u = this._eventsUrl();
    var add = function (name, value) {
      u += (u.indexOf("?") < 0 ? "?" : "&") + name + "=" + value;
    };
    if (this._mode === "token" && this._wrapped) {
      add("token", this._wrapped);
    }
    if (this.lastEventId !== "" && this.lastEventId != null) {
      add("lastEventId", encodeURIComponent(this.lastEventId));
    }
    return u;
  };

  /* POST /login with the stored credentials; opens the stream when it
   * succeeds. When renewing, a failure that may pass (no answer, 429, 5xx) is
   * retried with the backoff; any other failure goes to onLoginError. */
  SSEClient.prototype._logIn = function (renewing) {
    var self = this;
    var gen = this._gen;
    var xhr = new XMLHttpRequest();
    this._login = xhr;
    xhr.open("POST", this.url + "/login");
    xhr.withCredentials = true;
    xhr.setRequestHeader("Content-type", "application/json");
    xhr.onloadend = function () {
      if (self._login !== xhr || gen !== self._gen) {
        return; /* closed, or superseded by another withCreds/withToken */
      }
      self._login = null;
      if (xhr.status >= 200 && xhr.status < 300) {
        self._open();
        return;
      }
      var transient = xhr.status === 0 || xhr.status === 429 || xhr.status >= 500;
      if (transient && renewing) {
        self._renewNext = true;
        self._retryLater(clientError("login", "login failed with status " + xhr.status, xhr.status));
      } else if (typeof self.onLoginError === "function") {
        self.onLoginError(xhr);
      } else {
        console.warn("SSEClient: login failed with status " + xhr.status);
      }
    };
    xhr.send(JSON.stringify({ username: this.user, password: this.pass, id: this.id }));
  };

  /* Gets new credentials, then opens the stream: getToken() when set, else
   * (withCreds) a new login, else the client stops. */
  SSEClient.prototype._renew = function () {
    var self = this;
    var gen = this._gen;
    if (typeof this.getToken === "function") {
      this._mode = "token";
      new Promise(function (resolve) { resolve(self.getToken()); }).then(function (t) {
        if (gen !== self._gen) {
          return;
        }
        var jwt = t && typeof t === "object" ? t.token : t;
        var id = t && typeof t === "object" && t.id !== undefined ? t.id : self.id;
        if (typeof jwt !== "string" || jwt === "") {
          self._fail(clientError("token", "getToken gave no token"));
          return;
        }
        self._useToken(jwt, id);
        self._open();
      }, function (err) {
        if (gen !== self._gen) {
          return;
        }
        var e = clientError("token", "getToken failed: " + (err && err.message ? err.message : err));
        e.cause = err;
        self._renewNext = true;
        self._retryLater(e);
      });
    } else if (this._mode === "creds") {
      this._logIn(true);
    } else {
      this._fail(clientError("expired", "the token expired or was refused, and no getToken is set to get a new one", 401));
    }
  };

  /* Replaces any previous stream with a new EventSource and routes its
   * events to the callback. */
  SSEClient.prototype._open = function () {
    var self = this;
    var old = this.es;
    if (this._timer) {
      clearTimeout(this._timer);
      this._timer = null;
    }
    if (old) {
      old.close();
    }
    var gen = ++this._gen;
    var es = new EventSource(this._streamUrl(), { withCredentials: true });
    var on = function (type, fn) { EventSource.prototype.addEventListener.call(es, type, fn); };
    var wasOpen = false;
    es.onmessage = this._deliver;
    this._names().forEach(function (type) { on(type, self._deliver); });
    on("token-expired", function () {
      if (gen !== self._gen) {
        return;
      }
      es.close(); /* before the browser retries with the spent token */
      if (typeof self.getToken === "function" || self._mode === "creds") {
        self._report(clientError("expired", "the token expired; renewing it", 401), true);
      }
      self._renew();
    });
    on("reset", function (e) {
      var d = {};
      try { d = JSON.parse(e.data); } catch (ignored) { /* left empty */ }
      if (typeof self.onReset === "function") {
        self.onReset(d.oldest, d.latest, e);
      }
    });
    on("open", function (e) {
      if (gen === self._gen) {
        wasOpen = true;
        self._failures = 0;
        if (typeof self.onOpen === "function") {
          self.onOpen(e);
        }
      }
    });
    on("error", function () {
      if (gen !== self._gen) {
        return;
      }
      if (es.readyState === EventSource.CLOSED) {
        self._probe(es.url);
      } else if (wasOpen) {
        wasOpen = false; /* the browser retries once by itself, with Last-Event-ID */
        self._report(clientError("disconnected", "the stream dropped; reconnecting"), true);
      } else {
        es.close();
        self._retryLater(clientError("unreachable", "could not reach " + self.url));
      }
    });
    this._adopt(es, old);
    this.es = es;
  };

  /* Hands the listeners and handlers the page put on the old EventSource to
   * the new one, and records those it puts on the new one. */
  SSEClient.prototype._adopt = function (es, old) {
    var self = this;
    var proto = EventSource.prototype;
    this._pageListeners.forEach(function (l) { proto.addEventListener.call(es, l.type, l.fn, l.opts); });
    if (old) {
      es.onopen = old.onopen;
      es.onerror = old.onerror;
      if (old.onmessage !== this._deliver) {
        es.onmessage = old.onmessage;
      }
    }
    es.addEventListener = function (type, fn, opts) {
      self._pageListeners.push({ type: type, fn: fn, opts: opts });
      proto.addEventListener.call(es, type, fn, opts);
    };
    es.removeEventListener = function (type, fn, opts) {
      self._pageListeners = self._pageListeners.filter(function (l) { return l.type !== type || l.fn !== fn; });
      proto.removeEventListener.call(es, type, fn, opts);
    };
  };

  /* Every listened event: remember its id (the resume point), then the callback. */
  SSEClient.prototype._received = function (e) {
    if (e.lastEventId) {
      this.lastEventId = e.lastEventId;
    }
    if (typeof this.callback === "function") {
      this.callback(e);
    }
  };

  /* The browser gave up on url: ask once more with fetch, to learn why. */
  SSEClient.prototype._probe = function (url) {
    var self = this;
    var gen = this._gen;
    var ctl = typeof AbortController === "function" ? new AbortController() : null;
    fetch(url, { credentials: "include", cache: "no-store", signal: ctl ? ctl.signal : undefined })
      .then(function (res) {
        if (ctl) {
          ctl.abort(); /* only the status matters; a stream that opened this time ends here */
        }
        return res.status;
      }, function () { return 0; })
      .then(function (status) {
        if (gen !== self._gen) {
          return;
        }
        if (status === 401) {
          self._renewNext = true;
          self._retryLater(clientError("unauthorized", "the server refused the credentials (401); renewing them", 401));
        } else if (status === 400 || status === 403 || status === 404) {
          self._fail(clientError("refused", "the server refused the stream (" + status + ")", status));
        } else {
          self._retryLater(clientError(status >= 400 ? "refused" : status ? "disconnected" : "unreachable",
            "the stream failed" + (status ? " (" + status + ")" : ""), status));
        }
      });
  };

  /* Schedules the next attempt after the backoff delay, and reports err. */
  SSEClient.prototype._retryLater = function (err) {
    var self = this;
    var gen = this._gen;
    var n = ++this._failures;
    var ceiling = Math.min(this.retryMax, this.retryMin * Math.pow(2, Math.min(n - 1, 30)));
    var delay = Math.round(ceiling / 2 + Math.random() * ceiling / 2);
    if (this.es) {
      this.es.close();
    }
    err.retryIn = delay;
    this._report(err, true);
    this._timer = setTimeout(function () {
      self._timer = null;
      if (gen !== self._gen) {
        return;
      }
      if (self._renewNext) {
        self._renewNext = false;
        self._renew();
      } else {
        self._open();
      }
    }, delay);
  };

  /* Stops the client for good and reports err (a warning without onError). */
  SSEClient.prototype._fail = function (err) {
    this.close();
    this._report(err, false);
    if (typeof this.onError !== "function") {
      console.warn("SSEClient: " + err.message);
    }
  };

  SSEClient.prototype._report = function (err, willRetry) {
    err.willRetry = willRetry;
    if (typeof this.onError === "function") {
      this.onError(err);
    }
  };

  global.SSEClient = SSEClient;
})(typeof globalThis !== "undefined" ? globalThis : self);
