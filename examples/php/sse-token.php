<?php
/*
 * sse-token.php: POST, for the signed-in user only: {"token": ..., "id": ...},
 * a fresh ssehub token bound to that user, for the JS client's getToken.
 */
require __DIR__ . '/ssehub.php';

header('Content-Type: application/json');
header('Cache-Control: no-store');
if ($_SERVER['REQUEST_METHOD'] !== 'POST') {
    http_response_code(405);
    header('Allow: POST');
    echo json_encode(['error' => 'POST only']);
    exit;
}
app_session();
$user = $_SESSION['user'] ?? null;
session_write_close();
if (!is_string($user)) {
    http_response_code(401);
    echo json_encode(['error' => 'sign in first']);
    exit;
}
try {
    echo json_encode(['token' => ssehub_user_token($user), 'id' => $user]);
} catch (RuntimeException $e) {
    error_log('sse-token: ' . $e->getMessage());
    http_response_code(502);
    echo json_encode(['error' => 'ssehub is not available']);
}
