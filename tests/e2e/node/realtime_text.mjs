// A GA text round trip with the official Node SDK's OpenAIRealtimeWS (which always dials
// wss://). Usage: node realtime_text.mjs BASE_URL [API_KEY]
// Prints one JSON line, {"text": ..., "status": ..., "events": [...]}; exits 1 on an
// error event or a socket error, 2 if nothing ends the session within 10 s.
import OpenAI from "openai";
import { OpenAIRealtimeWS } from "openai/realtime/ws";

const [baseURL, apiKey = "sk-test-node"] = process.argv.slice(2);
const client = new OpenAI({ apiKey, baseURL, maxRetries: 0 });
const rt = new OpenAIRealtimeWS({ model: "gpt-realtime" }, client);
const events = [];
let text = "";

const fail = (code, message) => {
  process.stderr.write(`${message}\n`);
  process.exit(code);
};
const timer = setTimeout(() => fail(2, `no response.done within 10 s; saw ${events}`), 10_000);

rt.on("event", (event) => events.push(event.type));
rt.on("error", (err) => fail(1, `realtime error: ${err.message}`));
rt.on("session.created", () => {
  rt.send({ type: "session.update", session: { type: "realtime", output_modalities: ["text"] } });
});
rt.on("session.updated", () => {
  rt.send({
    type: "conversation.item.create",
    item: {
      type: "message",
      role: "user",
      content: [{ type: "input_text", text: "Say hi in three words" }],
    },
  });
  rt.send({ type: "response.create", response: { output_modalities: ["text"] } });
});
rt.on("response.output_text.delta", (event) => {
  text += event.delta;
});
rt.on("response.done", (event) => {
  clearTimeout(timer);
  console.log(JSON.stringify({ text, status: event.response.status, events }));
  rt.close();
});
