// Live page: camera frames to /v1/stream over a WebSocket at the model's frame rate.
"use strict";

const els = {
  video: $("#video"), canvas: $("#canvas"), status: $("#status"), cameraMessage: $("#camera-message"),
  results: $("#results"), infer: $("#infer"), fps: $("#fps"), rtt: $("#rtt"), frames: $("#frames"),
  toast: $("#toast"), model: $("#model"), threads: $("#threads"), minus: $("#threads-minus"),
  plus: $("#threads-plus"), camera: $("#camera"), flip: $("#flip"), reset: $("#reset"), pause: $("#pause"),
};

const state = {
  ws: null, ready: false, fps: 5, input: [172, 172], model: null, threads: 1, maxThreads: 1,
  inFlight: 0, sentAt: [], nextAt: 0, paused: false, retry: null, fatal: "",
  camera: "facing:user", stream: null, toastTimer: null, label: "",
};
const MAX_IN_FLIGHT = 2; // frames sent and not answered; past it, frames are skipped (no backlog)
const JPEG_QUALITY = 0.85;

function setStatus(text, kind = "") {
  els.status.textContent = text;
  els.status.className = `pill ${kind}`;
}

function toast(text, isError = false) {
  els.toast.textContent = text;
  els.toast.classList.toggle("error", isError);
  clearTimeout(state.toastTimer);
  state.toastTimer = setTimeout(() => { els.toast.textContent = ""; }, 4000);
}

function clearDisplay() {
  renderTop(els.results, []);
  els.infer.textContent = "– ms";
  els.fps.textContent = "– fps";
  els.rtt.textContent = "– ms";
  els.frames.textContent = "0";
}

function showThreads() {
  els.threads.textContent = String(state.threads);
  els.minus.disabled = state.threads <= 1;
  els.plus.disabled = state.threads >= state.maxThreads;
}

// -- WebSocket ------------------------------------------------------------------------

function connect() {
  clearTimeout(state.retry);
  const url = new URL("v1/stream", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  if (state.model) url.searchParams.set("model", state.model);
  url.searchParams.set("threads", String(state.threads));
  const ws = new WebSocket(url);
  Object.assign(state, { ws, ready: false, inFlight: 0, sentAt: [], fatal: "" });
  setStatus("connecting…");
  ws.onmessage = (event) => {
    if (state.ws === ws) handle(JSON.parse(event.data));
  };
  ws.onclose = (event) => {
    if (state.ws !== ws) return;
    state.ready = false;
    const why = state.fatal || event.reason || "disconnected";
    setStatus(why, "error");
    if (!state.paused) state.retry = setTimeout(connect, event.code === 1013 ? 5000 : 2000);
  };
}

function handle(msg) {
  switch (msg.type) {
    case "ready":
    case "config":
      Object.assign(state, { ready: true, fps: msg.fps, input: msg.input, model: msg.model, threads: msg.threads });
      els.model.value = msg.model;
      showThreads();
      clearDisplay();
      state.label = `live · ${msg.model} · ${msg.threads} thread${msg.threads > 1 ? "s" : ""}`
        + (msg.window ? ` · ${msg.window} s window` : "");
      setStatus(state.label, "ok");
      if (msg.type === "config") toast("Model loaded; state starts empty");
      break;
    case "result": {
      answered();
      renderTop(els.results, msg.top);
      els.infer.textContent = `${msg.infer_ms.toFixed(1)} ms`;
      els.fps.textContent = msg.input_fps == null ? "– fps" : `${msg.input_fps.toFixed(1)} fps`;
      els.frames.textContent = String(msg.frames);
      break;
    }
    case "skipped": // a newer frame reached the server before this one was due
      answered();
      els.frames.title = `${msg.skipped} skipped`;
      break;
    case "reset":
      clearDisplay();
      toast("Model state cleared");
      break;
    case "error":
      if (msg.reply_to === "frame") answered();
      if (msg.fatal) state.fatal = msg.message;
      toast(msg.message, true);
      break;
  }
}

function answered() {
  state.inFlight = Math.max(0, state.inFlight - 1);
  const sent = state.sentAt.shift();
  if (sent !== undefined) els.rtt.textContent = `${(performance.now() - sent).toFixed(0)} ms`;
}

function send(message) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(message));
}

// -- frames ---------------------------------------------------------------------------

function tick() {
  const now = performance.now();
  const interval = 1000 / (state.fps || 5);
  const ws = state.ws;
  const v = els.video;
  if (ws && ws.readyState === WebSocket.OPEN && state.ready && !state.paused
      && v.readyState >= 2 && v.videoWidth > 0 && state.inFlight < MAX_IN_FLIGHT) {
    sendFrame(ws);
  }
  state.nextAt = state.nextAt + interval > now ? state.nextAt + interval : now + interval;
  setTimeout(tick, state.nextAt - now);
}

function sendFrame(ws) {
  const v = els.video;
  // Downscale in the browser: the long side to the model's input (at least 224 px).
  const side = Math.max(224, ...state.input);
  const scale = Math.min(1, side / Math.max(v.videoWidth, v.videoHeight));
  const c = els.canvas;
  c.width = Math.round(v.videoWidth * scale);
  c.height = Math.round(v.videoHeight * scale);
  c.getContext("2d").drawImage(v, 0, 0, c.width, c.height);
  state.inFlight += 1;
  c.toBlob((blob) => {
    if (!blob || ws !== state.ws || ws.readyState !== WebSocket.OPEN) {
      state.inFlight = Math.max(0, state.inFlight - 1);
      return;
    }
    state.sentAt.push(performance.now());
    ws.send(blob);
  }, "image/jpeg", JPEG_QUALITY);
}

// -- camera ---------------------------------------------------------------------------

async function startCamera() {
  if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    cameraMessage("The camera needs a secure page: open this on localhost, or start "
      + "vidcls serve with --certfile and --keyfile and use https://.");
    return;
  }
  if (state.stream) state.stream.getTracks().forEach((t) => t.stop());
  const [kind, value] = state.camera.split(/:(.*)/s);
  const video = kind === "device" ? { deviceId: { exact: value } } : { facingMode: { ideal: value } };
  Object.assign(video, { width: { ideal: 640 }, height: { ideal: 480 } });
  try {
    state.stream = await navigator.mediaDevices.getUserMedia({ video, audio: false });
  } catch (e) {
    const why = e.name === "NotAllowedError" ? "Camera permission was denied: allow it in the browser and reload."
      : e.name === "NotFoundError" ? "No camera found." : `Cannot open the camera (${e.name}: ${e.message}).`;
    cameraMessage(why);
    return;
  }
  els.video.srcObject = state.stream;
  els.video.play().catch(() => {});
  const settings = state.stream.getVideoTracks()[0].getSettings();
  const facing = settings.facingMode || (kind === "facing" ? value : "user");
  els.video.classList.toggle("mirror", facing === "user");
  els.cameraMessage.hidden = true;
  listCameras(settings.deviceId);
}

function cameraMessage(text) {
  els.cameraMessage.textContent = text;
  els.cameraMessage.hidden = false;
}

async function listCameras(current) {
  const devices = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === "videoinput");
  els.camera.querySelectorAll("option[value^='device:']").forEach((o) => o.remove());
  devices.forEach((d, i) => {
    const o = document.createElement("option");
    o.value = `device:${d.deviceId}`;
    o.textContent = d.label || `Camera ${i + 1}`;
    els.camera.append(o);
  });
  els.camera.value = state.camera;
  els.flip.hidden = devices.length < 2;
  if (current && state.camera.startsWith("facing:")) els.camera.title = `using ${current}`;
}

// -- controls -------------------------------------------------------------------------

function bindControls() {
  els.model.onchange = () => send({ type: "config", model: els.model.value });
  els.minus.onclick = () => send({ type: "config", threads: state.threads - 1 });
  els.plus.onclick = () => send({ type: "config", threads: state.threads + 1 });
  els.reset.onclick = () => send({ type: "reset" });
  els.pause.onclick = () => {
    state.paused = !state.paused;
    els.pause.textContent = state.paused ? "Resume" : "Pause";
    if (state.paused) setStatus("paused");
    else if (!state.ws || state.ws.readyState > WebSocket.OPEN) connect();
    else if (state.ready) setStatus(state.label, "ok");
  };
  els.camera.onchange = () => { state.camera = els.camera.value; startCamera(); };
  els.flip.onclick = () => {
    state.camera = state.camera === "facing:environment" ? "facing:user" : "facing:environment";
    startCamera();
  };
}

async function init() {
  bindControls();
  clearDisplay();
  try {
    const info = await fetchJSON("v1/models");
    fillModels(els.model, info);
    Object.assign(state, { model: info.default, threads: info.threads.default, maxThreads: info.threads.max });
    showThreads();
  } catch (e) {
    setStatus(`server unreachable (${e.message})`, "error");
  }
  connect();
  startCamera();
  tick();
}

init();
