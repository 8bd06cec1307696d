// app.js - subscribes to the server's clock (Server-Sent Events) and
// shows each tick. window.volgaTicks lets tests see that events arrive.
'use strict';

window.volgaTicks = 0;

function showTick(event) {
  window.volgaTicks += 1;
  document.getElementById('clock').textContent = event.data;
  document.getElementById('ticks').textContent = String(window.volgaTicks);
}

function connect() {
  const source = new EventSource('clock');
  source.addEventListener('tick', showTick);
  source.addEventListener('error', () => {
    // EventSource reconnects by itself; say so meanwhile.
    document.getElementById('clock').textContent = 'reconnecting...';
  });
  return source;
}

document.addEventListener('DOMContentLoaded', connect);
