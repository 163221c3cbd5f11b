// The sandbox console's script: no framework, no build step. It reads its
// data (paths, seeds, fault kinds) from the page's JSON block, talks only to
// this server, and builds every element with textContent (no HTML from
// data). Tokens pasted into the checker stay in the page: they are decoded
// and verified here with WebCrypto.
'use strict';

(() => {
  const data = JSON.parse(document.getElementById('console-data').textContent);
  const origin = window.location.origin;
  const MAX_SHOWN = 500;

  const byId = (id) => document.getElementById(id);

  // An element with attributes (`text` sets its text) and children.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === 'text') node.textContent = value;
      else if (key === 'className') node.className = value;
      else node.setAttribute(key, value === true ? '' : String(value));
    }
    for (const child of children) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }

  function errorText(body, status) {
    if (body && typeof body === 'object' && body.error) {
      return body.error_description ? `${body.error}: ${body.error_description}` : body.error;
    }
    return `HTTP ${status}`;
  }

  async function fetchJson(path, options) {
    const resp = await fetch(path, { cache: 'no-store', ...options });
    let body = null;
    try {
      body = await resp.json();
    } catch (_) {
      body = null;
    }
    if (!resp.ok) throw new Error(errorText(body, resp.status));
    return body;
  }

  // ---- Start here ------------------------------------------------------

  async function copy(text, button) {
    const done = (label) => {
      button.textContent = label;
      setTimeout(() => { button.textContent = 'Copy'; }, 1500);
    };
    try {
      await navigator.clipboard.writeText(text);
      done('Copied');
    } catch (_) {
      done('Select and copy');
    }
  }

  // One dialect shown at a time, picked with a row of buttons.
  function renderStart() {
    const picker = byId('start-picker');
    const list = byId('start-list');
    const clients = byId('seed-clients');
    const buttons = [];
    const show = (dialect) => {
      for (const b of buttons) b.setAttribute('aria-pressed', String(b.dataset.dialect === dialect));
      for (const card of list.children) card.hidden = card.dataset.dialect !== dialect;
    };
    for (const d of data.dialects) {
      const command = d.curl.split(data.origin_marker).join(origin);
      const rows = [['client_id', d.client_id], ['secret', d.secret === null ? '— (public client)' : d.secret]];
      if (d.user) rows.push(['user', `${d.user[0]} / ${d.user[1]}`]);
      rows.push(['token endpoint', origin + d.path]);
      const dl = el('dl');
      for (const [k, v] of rows) dl.append(el('dt', { text: k }), el('dd', { className: 'mono', text: v }));
      const copyButton = el('button', { type: 'button', className: 'secondary small', text: 'Copy', 'aria-label': `Copy the ${d.dialect} curl command` });
      copyButton.addEventListener('click', () => copy(command, copyButton));
      list.append(el('article', { className: 'seed', 'data-dialect': d.dialect },
        dl, el('div', { className: 'curl-box' }, el('pre', { className: 'curl' }, el('code', { text: command })), copyButton)));
      const pick = el('button', { type: 'button', className: 'secondary small', 'data-dialect': d.dialect, text: d.dialect });
      pick.addEventListener('click', () => show(d.dialect));
      buttons.push(pick);
      picker.append(pick);
      clients.append(el('option', { value: d.client_id }));
      byId('filter-dialect').append(el('option', { value: d.dialect, text: d.dialect }));
    }
    if (data.dialects.length > 0) show(data.dialects[0].dialect);
  }

  let metadata = null;
  async function loadMetadata() {
    metadata = await fetchJson(data.paths.metadata);
    byId('issuer').textContent = metadata.issuer;
    byId('issuer-url').textContent = metadata.issuer;
    const meta = byId('metadata-url');
    meta.href = data.paths.metadata;
    meta.textContent = metadata.issuer + data.paths.metadata;
    const jwks = byId('jwks-url');
    jwks.href = metadata.jwks_uri;
    jwks.textContent = metadata.jwks_uri;
    return metadata;
  }

  // The JWKS as this server serves it: the metadata's `jwks_uri` names it
  // under the issuer, which may be another address than the page's.
  function jwksPath() {
    try {
      return new URL(metadata.jwks_uri).pathname;
    } catch (_) {
      return data.paths.jwks;
    }
  }

  // ---- Requests --------------------------------------------------------

  const requestList = byId('request-list');
  const filterClient = byId('filter-client');
  const filterDialect = byId('filter-dialect');
  const knownClients = new Set();
  const shownIds = new Set();

  function kvTable(entries) {
    const table = el('table', { className: 'kv' });
    const body = el('tbody');
    for (const [k, v] of entries) body.append(el('tr', {}, el('th', { scope: 'row', text: k }), el('td', { className: 'mono', text: v })));
    table.append(body);
    return table;
  }

  function matchesFilter(item) {
    const c = filterClient.value;
    const d = filterDialect.value;
    return (!c || item.dataset.client === c) && (!d || item.dataset.dialect === d);
  }

  function applyFilter() {
    let visible = 0;
    for (const item of requestList.children) {
      item.hidden = !matchesFilter(item);
      if (!item.hidden) visible += 1;
    }
    byId('requests-empty').hidden = visible > 0;
  }

  function addRequest(r) {
    if (shownIds.has(r.id)) return;
    shownIds.add(r.id);
    const client = r.client_id || '';
    if (client && !knownClients.has(client)) {
      knownClients.add(client);
      filterClient.append(el('option', { value: client, text: client }));
    }
    const ok = r.status >= 200 && r.status < 300;
    const time = new Date(r.time * 1000).toLocaleTimeString();
    const summary = el('summary', {},
      el('span', { className: `status ${ok ? 'ok' : 'err'}`, text: String(r.status) }),
      el('span', { className: 'mono', text: client || '(no client id)' }),
      el('span', { className: 'muted', text: r.dialect }),
      el('span', { text: r.outcome }),
      r.fault ? el('span', { className: 'fault-badge', text: `fault ${r.fault}` }) : null,
      el('time', { className: 'muted', datetime: new Date(r.time * 1000).toISOString(), text: time }));
    const details = el('details', {}, summary, el('div', { className: 'body' },
      kvTable([
        ['request', `${r.method} ${r.path}${r.query ? `?${r.query}` : ''}`],
        ['outcome', r.outcome],
        ['status', String(r.status)],
        ['fault', r.fault || 'none'],
        ['captured', `#${r.id}`],
      ]),
      el('h3', { text: 'Headers (masked)' }),
      kvTable(Object.entries(r.headers)),
      el('h3', { text: 'Body (masked)' }),
      el('pre', { className: 'captured-body', text: r.body || '(empty)' })));
    const item = el('li', { className: 'request', 'data-client': client, 'data-dialect': r.dialect, 'data-id': String(r.id) }, details);
    item.hidden = !matchesFilter(item);
    requestList.prepend(item);
    while (requestList.children.length > MAX_SHOWN) {
      const last = requestList.lastElementChild;
      shownIds.delete(Number(last.dataset.id));
      last.remove();
    }
    applyFilter();
  }

  function setStreamStatus(text, kind) {
    const pill = byId('stream-status');
    pill.textContent = text;
    pill.className = `pill ${kind || ''}`;
  }

  function connectStream() {
    // EventSource reconnects by itself, resuming with Last-Event-ID.
    const source = new EventSource(data.paths.stream);
    source.addEventListener('open', () => setStreamStatus('live', 'live'));
    source.addEventListener('error', () => setStreamStatus('reconnecting…', 'down'));
    source.addEventListener('request', (event) => {
      addRequest(JSON.parse(event.data));
      scheduleFaultRefresh();
    });
    source.addEventListener('lagged', (event) => {
      const { missed } = JSON.parse(event.data);
      const note = byId('requests-note');
      note.hidden = false;
      note.textContent = `This page fell behind and missed up to ${missed} requests; GET /sandbox/requests has them.`;
    });
  }

  // ---- Faults ----------------------------------------------------------

  const faultMessage = byId('fault-message');
  function say(text, kind) {
    faultMessage.textContent = text;
    faultMessage.className = `message ${kind || ''}`;
  }

  function describeFault(f) {
    const parts = [];
    if (f.times !== null && f.times !== undefined) parts.push(`${f.remaining} of ${f.times} left`);
    if (f.ratio !== null && f.ratio !== undefined) parts.push(`ratio ${f.ratio}`);
    if (f.seed !== null && f.seed !== undefined) parts.push(`seed ${f.seed}`);
    parts.push(`fired ${f.fired}`);
    return parts.join(' · ');
  }

  async function refreshFaults() {
    let faults;
    try {
      faults = await fetchJson(data.paths.faults);
    } catch (e) {
      say(`Could not read the faults: ${e.message}`, 'err');
      return;
    }
    const list = byId('fault-list');
    list.replaceChildren();
    for (const f of faults) {
      const clear = el('button', { type: 'button', className: 'secondary small', text: 'Clear', 'aria-label': `Clear the fault of ${f.client_id}` });
      clear.addEventListener('click', () => clearFaults(f.client_id));
      list.append(el('li', { 'data-client': f.client_id },
        el('span', { className: 'grow' }, el('strong', { className: 'mono', text: f.client_id }), ' ',
          el('span', { className: 'fault-badge', text: f.kind })),
        el('span', { className: 'muted', text: describeFault(f) }),
        clear));
    }
    byId('faults-empty').hidden = faults.length > 0;
    byId('clear-all').disabled = faults.length === 0;
  }

  let refreshTimer = null;
  function scheduleFaultRefresh() {
    if (refreshTimer !== null) return;
    refreshTimer = setTimeout(() => {
      refreshTimer = null;
      refreshFaults();
    }, 250);
  }

  async function clearFaults(client) {
    const query = client ? `?client_id=${encodeURIComponent(client)}` : '';
    try {
      const { cleared } = await fetchJson(data.paths.faults + query, { method: 'DELETE' });
      say(client ? `Cleared the fault of ${client}.` : `Cleared ${cleared} fault${cleared === 1 ? '' : 's'}.`, 'ok');
    } catch (e) {
      say(`Not cleared: ${e.message}`, 'err');
    }
    await refreshFaults();
  }

  function setUpFaultForm() {
    const kind = byId('fault-kind');
    for (const k of data.fault_kinds) kind.append(el('option', { value: k, text: k }));
    kind.append(el('option', { value: 'delay', text: 'delay:MILLISECONDS' }));
    const delayField = byId('delay-field');
    const delay = byId('fault-delay');
    delay.max = String(data.max_delay_ms);
    kind.addEventListener('change', () => { delayField.hidden = kind.value !== 'delay'; });

    byId('fault-form').addEventListener('submit', async (event) => {
      event.preventDefault();
      const client = byId('fault-client').value.trim();
      if (!client) {
        say('Name the client whose requests should fail.', 'err');
        byId('fault-client').focus();
        return;
      }
      const body = { client_id: client, kind: kind.value === 'delay' ? `delay:${delay.value.trim()}` : kind.value };
      const times = byId('fault-times').value.trim();
      const ratio = byId('fault-ratio').value.trim();
      const seed = byId('fault-seed').value.trim();
      if (times) body.times = Number(times);
      if (ratio) body.ratio = Number(ratio);
      let json = JSON.stringify(body);
      if (seed) {
        // A u64 seed may exceed what a JS number holds exactly: its digits
        // go into the JSON as they are.
        if (!/^\d{1,20}$/.test(seed)) {
          say('The seed is a whole number.', 'err');
          return;
        }
        json = `${json.slice(0, -1)},"seed":${seed}}`;
      }
      try {
        const set = await fetchJson(data.paths.faults, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: json,
        });
        say(`Set: ${set.client_id} gets ${set.kind}.`, 'ok');
      } catch (e) {
        say(`Not set: ${e.message}`, 'err');
      }
      await refreshFaults();
    });
    byId('clear-all').addEventListener('click', () => clearFaults(null));
  }

  // ---- Token checker ---------------------------------------------------

  function b64urlBytes(text) {
    if (!/^[A-Za-z0-9_-]*$/.test(text)) throw new Error('not base64url');
    const b64 = text.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((text.length + 3) % 4);
    const bin = atob(b64);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i += 1) out[i] = bin.charCodeAt(i);
    return out;
  }

  function b64urlJson(text) {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(b64urlBytes(text)));
  }

  // The WebCrypto import and verify parameters of each algorithm ficha
  // signs with. An ES256 JWS signature is the raw r||s that ECDSA verify
  // takes as it is.
  const ALGS = {
    ES256: {
      jwk: (k) => ({ kty: 'EC', crv: 'P-256', x: k.x, y: k.y, ext: true }),
      importAs: { name: 'ECDSA', namedCurve: 'P-256' },
      verifyAs: { name: 'ECDSA', hash: 'SHA-256' },
    },
    RS256: {
      jwk: (k) => ({ kty: 'RSA', n: k.n, e: k.e, alg: 'RS256', ext: true }),
      importAs: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
      verifyAs: { name: 'RSASSA-PKCS1-v1_5' },
    },
  };

  function ago(seconds) {
    if (seconds < 90) return `${seconds} s`;
    if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
    return `${Math.round(seconds / 3600)} h`;
  }

  // Every check a verifier makes, each with why it fails; `reasons` lists
  // the failures first.
  async function checkToken(token) {
    const parts = token.split('.');
    if (parts.length !== 3) return { malformed: `a JWS has three dot-separated parts; this has ${parts.length}` };
    let header;
    let claims;
    try {
      header = b64urlJson(parts[0]);
      claims = b64urlJson(parts[1]);
    } catch (_) {
      return { malformed: 'the header or the claims are not base64url JSON' };
    }
    const checks = [];
    const fail = (short, text) => checks.push({ ok: false, short, text });
    const pass = (text) => checks.push({ ok: true, text });

    const alg = ALGS[header.alg];
    if (!alg) {
      fail('unsupported alg', `unsupported alg ${JSON.stringify(header.alg)}: this server signs ES256 and RS256`);
    } else {
      const jwks = await fetchJson(jwksPath());
      const key = (jwks.keys || []).find((k) => k.kid === header.kid);
      if (!key) {
        fail('unknown kid', `unknown kid: ${JSON.stringify(header.kid)} is not in this server's JWKS`);
      } else if (!crypto.subtle) {
        fail('signature not checked', 'WebCrypto is unavailable: open the console over https or on localhost to verify signatures');
      } else {
        let valid = false;
        try {
          const cryptoKey = await crypto.subtle.importKey('jwk', alg.jwk(key), alg.importAs, false, ['verify']);
          const signed = new TextEncoder().encode(`${parts[0]}.${parts[1]}`);
          valid = await crypto.subtle.verify(alg.verifyAs, cryptoKey, b64urlBytes(parts[2]), signed);
        } catch (_) {
          valid = false;
        }
        if (valid) pass(`signature verifies with key ${header.kid} (${header.alg})`);
        else fail('bad signature', `bad signature: it does not verify with key ${header.kid} (${header.alg})`);
      }
    }

    const now = Math.floor(Date.now() / 1000);
    if (typeof claims.exp !== 'number') fail('no exp', 'no exp claim');
    else if (claims.exp <= now) fail('expired', `expired ${ago(now - claims.exp)} ago (exp ${new Date(claims.exp * 1000).toISOString()})`);
    else pass(`expires in ${ago(claims.exp - now)}`);
    if (typeof claims.nbf === 'number' && claims.nbf > now) fail('not yet valid', `not valid before ${new Date(claims.nbf * 1000).toISOString()}`);
    if (claims.iss !== metadata.issuer) fail('wrong issuer', `wrong issuer: ${JSON.stringify(claims.iss)}, this server is ${JSON.stringify(metadata.issuer)}`);
    else pass('issuer is this server');
    checks.sort((a, b) => Number(a.ok) - Number(b.ok));
    return { header, claims, checks };
  }

  function setUpChecker() {
    const input = byId('token-input');
    const verdict = byId('token-verdict');
    const reasons = byId('token-reasons');
    const partsBox = byId('token-parts');
    let run = 0;
    async function check() {
      const token = input.value.replace(/\s+/g, '').replace(/^Bearer/i, '');
      const mine = ++run;
      reasons.replaceChildren();
      if (!token) {
        verdict.textContent = '';
        verdict.className = 'verdict';
        partsBox.hidden = true;
        return;
      }
      let result;
      try {
        if (!metadata) await loadMetadata();
        result = await checkToken(token);
      } catch (e) {
        result = { malformed: `could not check: ${e.message}` };
      }
      if (mine !== run) return;
      if (result.malformed) {
        verdict.textContent = `not valid: ${result.malformed}`;
        verdict.className = 'verdict bad';
        partsBox.hidden = true;
        return;
      }
      const failed = result.checks.filter((c) => !c.ok);
      verdict.textContent = failed.length === 0 ? 'valid' : `not valid: ${failed.map((c) => c.short).join(', ')}`;
      verdict.className = `verdict ${failed.length === 0 ? 'ok' : 'bad'}`;
      for (const c of result.checks) reasons.append(el('li', { className: c.ok ? 'ok' : 'bad', text: `${c.ok ? '✓' : '✗'} ${c.text}` }));
      byId('token-header').textContent = JSON.stringify(result.header, null, 2);
      byId('token-claims').textContent = JSON.stringify(result.claims, null, 2);
      partsBox.hidden = false;
    }
    byId('token-check').addEventListener('click', check);
    input.addEventListener('input', check);
    input.addEventListener('change', check);
    byId('token-clear').addEventListener('click', () => {
      input.value = '';
      check();
      input.focus();
    });
  }

  // ---- Start -----------------------------------------------------------

  renderStart();
  setUpFaultForm();
  setUpChecker();
  filterClient.addEventListener('change', applyFilter);
  filterDialect.addEventListener('change', applyFilter);
  loadMetadata().catch((e) => { byId('issuer').textContent = `metadata unavailable (${e.message})`; });
  refreshFaults();
  setInterval(refreshFaults, 5000);
  connectStream();
})();
