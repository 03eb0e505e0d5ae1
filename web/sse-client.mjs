/*
 * sse-client.mjs: the ssehub browser client as an ES module.
 *
 *   import SSEClient from "/client/sse-client.mjs";
 *   // or: import { SSEClient } from "/client/sse-client.mjs";
 *   const client = new SSEClient("https://sse.example.org", "sse");
 *   client.getToken = () => fetch("/sse-token", { method: "POST" }).then((r) => r.json());
 *   client.setCallback((e) => console.log(e.type, e.data)).withToken();
 *
 * The client itself lives in sse-client.js (a classic script, so pages
 * without modules can use it too); importing it runs it once, which defines
 * globalThis.SSEClient, and this module re-exports that. Serve both files
 * from the same directory. See sse-client.js for the API.
 */
import "./sse-client.js";

export const SSEClient = globalThis.SSEClient;
export default SSEClient;
