<?php
/*
 * index.php: an application that gives its signed-in users a live
 * notification stream from ssehub, the safe way.
 *
 *   SSE_BROADCASTER_PASSWORD=... php -S 127.0.0.1:8999 -t examples/php
 *
 * The app signs its users in itself (a demo form, two demo users). The page
 * asks sse-token.php, which mints an ssehub token for the session's user with
 * the broadcaster's account (its password stays on the server), and hands it
 * to the JS client's withToken; getToken asks again whenever it runs out.
 * ssehub must list this app's origin (http://127.0.0.1:8999) in ALLOWED_ORIGIN.
 */
require __DIR__ . '/ssehub.php';

app_session();
$error = '';
if ($_SERVER['REQUEST_METHOD'] === 'POST') {
    if (($_POST['action'] ?? '') === 'logout') {
        session_destroy();
        header('Location: /', true, 303);
        exit;
    }
    $name = (string) ($_POST['user'] ?? '');
    if (isset(USERS[$name]) && hash_equals(USERS[$name], (string) ($_POST['password'] ?? ''))) {
        session_regenerate_id(true);
        $_SESSION['user'] = $name;
        header('Location: /', true, 303);
        exit;
    }
    http_response_code(401);
    $error = 'Wrong user or password.';
}
$user = $_SESSION['user'] ?? null;
$h = fn ($s) => htmlspecialchars((string) $s, ENT_QUOTES);
$js = fn ($v) => json_encode($v, JSON_HEX_TAG | JSON_UNESCAPED_SLASHES);
header('Cache-Control: no-store');
?>
<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>My app</title><link rel="icon" href="data:,"></head>
<body>
<h1>My app</h1>
<?php if (!is_string($user)): ?>
<?php if ($error): ?><p id="error"><?= $h($error) ?></p><?php endif ?>
<form method="post" action="/">
  <label>User <input name="user" autocomplete="username"></label>
  <label>Password <input name="password" type="password" autocomplete="current-password"></label>
  <button type="submit">Sign in</button>
</form>
<p>Demo users: alice / alice-password, bob / bob-password.</p>
<?php else: ?>
<p>Signed in as <b id="user"><?= $h($user) ?></b>.</p>
<form method="post" action="/"><button name="action" value="logout">Sign out</button></form>
<p>Notifications: <span id="status">connecting</span></p>
<ul id="events"></ul>
<script src="<?= $h(SSEHUB_URL) ?>/client/sse-client.js"></script>
<script>
  var client = new SSEClient(<?= $js(SSEHUB_URL) ?>, "sse");
  /* Asked first and whenever the token runs out: this app's backend mints it. */
  client.getToken = function () {
    return fetch("/sse-token.php", { method: "POST" }).then(function (res) {
      if (res.status === 401) { return null; } /* signed out: no token, the client stops */
      if (!res.ok) { throw new Error("sse-token.php answered " + res.status); } /* tried again later */
      return res.json(); /* {token, id} */
    });
  };
  client.setCallback(function (e) {
    var li = document.createElement("li");
    li.dataset.id = e.lastEventId;
    li.dataset.type = e.type;
    li.textContent = e.data;
    document.getElementById("events").appendChild(li);
  });
  client.onOpen = function () { document.getElementById("status").textContent = "connected"; };
  client.onError = function (err) {
    document.getElementById("status").textContent = err.willRetry ? "reconnecting" : "stopped: " + err.message;
  };
  client.withToken();
</script>
<?php endif ?>
</body></html>
