<?php
/*
 * ssehub.php: the settings and the two ssehub calls of this example (plain
 * PHP: file_get_contents with a stream context, no extension needed).
 *
 * Environment:
 *   SSEHUB_URL                ssehub's address as the browser reaches it (http://127.0.0.1:8080)
 *   SSEHUB_INTERNAL_URL       the same as PHP reaches it, when it differs (SSEHUB_URL)
 *   SSE_BROADCASTER_USERNAME  ssehub's publisher account (broadcaster)
 *   SSE_BROADCASTER_PASSWORD  its password, from ssehub's .env (required)
 *   SSE_USER_TOKEN_TTL        lifetime of a user's token in seconds, 1 to 86400 (3600)
 */
if (realpath($_SERVER['SCRIPT_FILENAME'] ?? '') === __FILE__) {
    http_response_code(404); /* included by the pages, not a page itself */
    exit;
}

define('SSEHUB_URL', rtrim(getenv('SSEHUB_URL') ?: 'http://127.0.0.1:8080', '/'));
define('SSEHUB_INTERNAL_URL', rtrim(getenv('SSEHUB_INTERNAL_URL') ?: SSEHUB_URL, '/'));
define('SSE_BROADCASTER_USERNAME', getenv('SSE_BROADCASTER_USERNAME') ?: 'broadcaster');
define('SSE_BROADCASTER_PASSWORD', getenv('SSE_BROADCASTER_PASSWORD') ?: '');
define('SSE_USER_TOKEN_TTL', (int) (getenv('SSE_USER_TOKEN_TTL') ?: 3600));

/* The app's own users; a real app checks its database. */
const USERS = ['alice' => 'alice-password', 'bob' => 'bob-password'];

function app_session(): void
{
    session_start(['cookie_httponly' => true, 'cookie_samesite' => 'Lax']);
}

/* POSTs JSON to ssehub; returns [HTTP status (0: no answer), decoded JSON body or null]. */
function ssehub_post(string $path, array $body, ?string $bearer = null): array
{
    $headers = "Content-Type: application/json\r\n";
    if ($bearer !== null) {
        $headers .= "Authorization: Bearer $bearer\r\n";
    }
    $context = stream_context_create(['http' => [
        'method' => 'POST',
        'header' => $headers,
        'content' => json_encode($body),
        'ignore_errors' => true, /* read the body of 4xx answers too */
        'timeout' => 5,
    ]]);
    $text = @file_get_contents(SSEHUB_INTERNAL_URL . $path, false, $context);
    $head = function_exists('http_get_last_response_headers')
        ? http_get_last_response_headers() : ($http_response_header ?? []);
    $status = preg_match('{^HTTP/\S+ (\d{3})}', $head[0] ?? '', $m) ? (int) $m[1] : 0;
    return [$status, $text === false ? null : json_decode($text, true)];
}

/*
 * A subscriber token bound to $user: logs in to ssehub as the broadcaster,
 * then POST /token. (A busy app keeps the broadcaster's token, valid for
 * ssehub's SSE_TOKEN_TTL, instead of logging in for each user token.)
 */
function ssehub_user_token(string $user): string
{
    if (SSE_BROADCASTER_PASSWORD === '') {
        throw new RuntimeException('SSE_BROADCASTER_PASSWORD is not set: copy it from ssehub\'s .env');
    }
    [$status, $login] = ssehub_post('/login', [
        'username' => SSE_BROADCASTER_USERNAME,
        'password' => SSE_BROADCASTER_PASSWORD,
    ]);
    if ($status !== 200 || !is_string($login['token'] ?? null)) {
        throw new RuntimeException("ssehub /login answered $status");
    }
    [$status, $minted] = ssehub_post('/token', ['user' => $user, 'ttl' => SSE_USER_TOKEN_TTL], $login['token']);
    if ($status !== 201 || !is_string($minted['token'] ?? null)) {
        throw new RuntimeException("ssehub /token answered $status");
    }
    return $minted['token'];
}
