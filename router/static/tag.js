/* adrouter site tag. rt('init', {key}), rt('track', name, props, {event_id, callback}),
   rt('identify', {email, ...}), rt('consent', {ad_storage, ...}). Guide: docs/site-tag.md */
(function (w, d) {
  'use strict';
  if (w.rt && w.rt.loaded) return;
  var CLICKS = ['fbclid', 'gclid', 'gbraid', 'wbraid', 'ttclid', 'ScCid', 'rdt_cid', 'epik', 'li_fat_id'];
  var COOKIES = ['_fbp', '_fbc', '_ttp', '_scid', '_rdt_uuid', '_epik', 'li_fat_id', '_gcl_aw'];
  var SAVED = '_rt_clicks';
  var script = d.currentScript;
  var origin = script && script.src ? new URL(script.src).origin : '';
  var config = null, user = {}, consent = {}, waiting = [];

  function assign(to, from) {
    for (var k in from) to[k] = from[k];
    return to;
  }

  function uuid() {
    var c = w.crypto;
    if (c && c.randomUUID) return c.randomUUID();
    return 'xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx'.replace(/[xy]/g, function (x) {
      var r = c && c.getRandomValues ? c.getRandomValues(new Uint8Array(1))[0] & 15 : (Math.random() * 16) | 0;
      return (x === 'x' ? r : (r & 3) | 8).toString(16);
    });
  }

  // Click ids on the landing URL, byte for byte, as {name: [id, ms seen]}. Held in memory, and kept in
  // sessionStorage while ad_storage is not denied, so a purchase on a later page still carries them.
  var landed = {};
  w.location.search.slice(1).split('&').forEach(function (pair) {
    var i = pair.indexOf('='), name = pair.slice(0, i);
    if (i > 0 && i < pair.length - 1 && CLICKS.indexOf(name) >= 0 && !landed[name]) {
      landed[name] = [pair.slice(i + 1), Date.now()];
    }
  });

  function clicks() {
    var saved = {}, store = null, k;
    try {
      store = w.sessionStorage;
      saved = JSON.parse(store.getItem(SAVED) || '{}') || {};
    } catch (e) { /* storage blocked: the landing page's ids still go out */ }
    for (k in landed) if (!saved[k] || saved[k][0] !== landed[k][0]) saved[k] = landed[k];
    try { store.setItem(SAVED, JSON.stringify(saved)); } catch (e) { /* blocked or full */ }
    return saved;
  }

  function cookies() {
    var out = {};
    d.cookie.split(/;\s*/).forEach(function (c) {
      var i = c.indexOf('=');
      if (i > 0 && COOKIES.indexOf(c.slice(0, i)) >= 0) out[c.slice(0, i)] = c.slice(i + 1);
    });
    return out;
  }

  function send(events) {
    var url = config.endpoint + '/collect', body = JSON.stringify({ key: config.key, events: events });
    var nav = w.navigator;
    if (nav.sendBeacon && nav.sendBeacon(url, body)) return;
    if (w.fetch) w.fetch(url, { method: 'POST', body: body, keepalive: true, credentials: 'include' })['catch'](function () {});
  }

  function track(name, properties, options) {
    options = options || {};
    var id = options.event_id || uuid();
    var event = {
      event_name: name,
      event_id: id,
      page: { url: w.location.href, referrer: d.referrer, title: d.title },
      user: assign(w.navigator.language ? { language: w.navigator.language } : {}, user),
      consent: assign({}, consent),
      properties: properties || {}
    };
    if (consent.ad_storage !== 'denied') {
      event.clicks = clicks();
      event.cookies = cookies();
    }
    if (config) send([event]); else waiting.push(event);
    if (typeof options.callback === 'function') options.callback(id);
    return id;
  }

  function rt(command, a, b, c) {
    if (command === 'init') {
      config = { key: a.key, endpoint: (a.endpoint || origin).replace(/\/+$/, '') };
      if (waiting.length) send(waiting.splice(0));
    } else if (command === 'track') {
      return track(a, b, c);
    } else if (command === 'identify') {
      assign(user, a);
    } else if (command === 'consent') {
      for (var k in a) consent[k] = a[k] === true ? 'granted' : a[k] === false ? 'denied' : a[k];
      if (consent.ad_storage === 'granted') clicks();
    }
  }

  var queued = (w.rt && w.rt.q) || [];
  rt.loaded = true;
  w.rt = rt;
  for (var i = 0; i < queued.length; i++) rt.apply(null, queued[i]);
})(window, document);
