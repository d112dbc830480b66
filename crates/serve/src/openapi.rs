//! The OpenAPI 3 description of the API (`/openapi.json`) and a self-contained `/docs`
//! page that renders it with a few lines of inline script: no CDN, so it works on
//! machines without internet access.

use serde_json::{Value, json};

use crate::config::MAX_K;
use crate::query::DEFAULT_K;

/// The OpenAPI document.
pub fn document() -> Value {
    let error = json!({"$ref": "#/components/schemas/Error"});
    let err = |desc: &str| json!({"description": desc, "content": {"application/json": {"schema": error}}});
    let k = json!({
        "name": "k", "in": "query", "required": false,
        "description": format!("number of items, 1..={MAX_K} (default {DEFAULT_K})"),
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_K, "default": DEFAULT_K}
    });
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "newsrec",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Streaming news recommendations: live tier routing (anonymous → semi_logged → logged), live popularity and co-visitation, batch models per tier."
        },
        "paths": {
            "/recommendations": {"get": {
                "summary": "Recommendations for a user",
                "description": "The tier is decided from the user's live features. Already-read pages are excluded; a short tier is filled from the next. `degraded` is true when the feature store was unreachable and the answer comes from the models and a recent popularity snapshot.",
                "parameters": [
                    {"name": "user_id", "in": "query", "required": true, "schema": {"type": "string", "maxLength": 128, "pattern": "^[A-Za-z0-9._:-]+$"}},
                    k,
                    {"name": "num_recs", "in": "query", "required": false, "description": "alias of k", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_K}}
                ],
                "responses": {
                    "200": {"description": "recommendations", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Recommendations"}}}},
                    "400": err("missing or malformed user_id, k out of range")
                }
            }},
            "/popular": {"get": {
                "summary": "Live most-read articles in a window",
                "parameters": [
                    {"name": "window", "in": "query", "required": false, "description": "window name, e.g. 1h (default: the shortest window)", "schema": {"type": "string"}},
                    k
                ],
                "responses": {
                    "200": {"description": "top list", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Popular"}}}},
                    "400": err("unknown window or bad k")
                }
            }},
            "/articles/{page}/similar": {"get": {
                "summary": "Articles similar to one (content and co-visitation)",
                "parameters": [
                    {"name": "page", "in": "path", "required": true, "schema": {"type": "string"}},
                    k
                ],
                "responses": {
                    "200": {"description": "similar articles", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Similar"}}}},
                    "400": err("malformed page or bad k"),
                    "404": err("unknown page")
                }
            }},
            "/events": {"post": {
                "summary": "Publish a click event to the clicks topic",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ClickEvent"}}}},
                "responses": {
                    "202": {"description": "accepted and acknowledged by the log"},
                    "400": err("invalid event (code says why)"),
                    "413": err("body too large"),
                    "415": err("not application/json"),
                    "503": err("event log unavailable")
                }
            }},
            "/evaluation/metrics": {"get": {
                "summary": "Offline evaluation history",
                "responses": {"200": {"description": "evaluation history", "content": {"application/json": {}}}, "404": err("no evaluation yet")}
            }},
            "/models/current": {"get": {
                "summary": "Manifest of the model being served",
                "responses": {"200": {"description": "manifest", "content": {"application/json": {}}}}
            }},
            "/admin/reload": {"post": {
                "summary": "Reload the current model now",
                "security": [{"bearer": []}],
                "responses": {"200": {"description": "reloaded (or unchanged)"}, "401": err("missing or wrong token"), "503": err("load failed")}
            }},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "text exposition", "content": {"text/plain": {}}}}}},
            "/health/live": {"get": {"summary": "Liveness", "responses": {"200": {"description": "the process answers"}}}},
            "/health/ready": {"get": {"summary": "Readiness: feature store reachable and a model loaded", "responses": {"200": {"description": "ready"}, "503": {"description": "not ready"}}}},
            "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3"}}}},
            "/docs": {"get": {"summary": "Human-readable API documentation", "responses": {"200": {"description": "HTML"}}}}
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}},
                "Item": {"type": "object", "required": ["page", "score", "reason"], "properties": {
                    "page": {"type": "string"}, "score": {"type": "number"},
                    "title": {"type": "string", "nullable": true}, "url": {"type": "string", "nullable": true},
                    "reason": {"type": "string", "description": "where the item came from: cf, content, cluster, popular, trending, recent, read-next, …"}
                }},
                "Recommendations": {"type": "object", "required": ["user_id", "tier", "model_version", "degraded", "items"], "properties": {
                    "user_id": {"type": "string"},
                    "tier": {"type": "string", "enum": ["anonymous", "semi_logged", "logged"]},
                    "model_version": {"type": "string"},
                    "degraded": {"type": "boolean"},
                    "items": {"type": "array", "items": {"$ref": "#/components/schemas/Item"}}
                }},
                "Popular": {"type": "object", "properties": {
                    "window": {"type": "string"}, "degraded": {"type": "boolean"},
                    "items": {"type": "array", "items": {"type": "object", "properties": {"page": {"type": "string"}, "clicks": {"type": "number"}, "title": {"type": "string", "nullable": true}, "url": {"type": "string", "nullable": true}}}}
                }},
                "Similar": {"type": "object", "properties": {
                    "page": {"type": "string"}, "degraded": {"type": "boolean"},
                    "items": {"type": "array", "items": {"$ref": "#/components/schemas/Item"}}
                }},
                "ClickEvent": {"type": "object", "required": ["event_id", "user_id", "user_type", "page", "ts"], "properties": {
                    "event_id": {"type": "string"}, "user_id": {"type": "string"},
                    "user_type": {"type": "string", "enum": ["Logged", "Non-Logged"]},
                    "page": {"type": "string"}, "ts": {"type": "integer", "description": "event time, epoch ms"},
                    "session_id": {"type": "string"}, "clicks": {"type": "integer", "minimum": 0},
                    "time_on_page_ms": {"type": "integer", "minimum": 0}, "scroll_pct": {"type": "number", "minimum": 0},
                    "page_visits": {"type": "integer", "minimum": 0}
                }}
            }
        }
    })
}

/// The `/docs` page: renders `/openapi.json` client-side with inline script only.
pub const DOCS_HTML: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>newsrec API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px/1.45 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
h1{margin-bottom:.2rem}.op{border:1px solid #ddd;border-radius:6px;margin:1rem 0;padding:.6rem 1rem}
.m{display:inline-block;min-width:3.5rem;font-weight:bold;color:#fff;border-radius:4px;padding:0 .4rem;text-align:center}
.get{background:#2b7bb9}.post{background:#2e9b4f}code,pre{background:#f5f5f5;padding:.1rem .3rem;border-radius:3px}
pre{padding:.6rem;overflow:auto;max-height:24rem}table{border-collapse:collapse}td,th{border-bottom:1px solid #eee;padding:.2rem .6rem;text-align:left}
input{font:inherit;width:14rem}button{font:inherit}
</style></head>
<body><h1>newsrec API</h1><p id="desc">Loading <a href="/openapi.json">/openapi.json</a>…</p><div id="ops"></div>
<script>
"use strict";
const el=(t,a={},...c)=>{const e=document.createElement(t);for(const[k,v]of Object.entries(a))e.setAttribute(k,v);for(const x of c)e.append(x);return e};
fetch("/openapi.json").then(r=>r.json()).then(doc=>{
  document.getElementById("desc").textContent=doc.info.description+" (version "+doc.info.version+")";
  const ops=document.getElementById("ops");
  for(const[path,item]of Object.entries(doc.paths)){for(const[method,op]of Object.entries(item)){
    const box=el("div",{class:"op"},el("span",{class:"m "+method},method.toUpperCase())," ",el("code",{},path)," ",op.summary||"");
    if(op.description)box.append(el("p",{},op.description));
    const params=op.parameters||[];const inputs={};
    if(params.length){const tb=el("table",{},el("tr",{},el("th",{},"parameter"),el("th",{},"in"),el("th",{},"value")));
      for(const p of params){const i=el("input",{placeholder:(p.schema&&p.schema.default!==undefined)?String(p.schema.default):""});inputs[p.name]=[p,i];
        tb.append(el("tr",{},el("td",{},p.name+(p.required?" *":"")),el("td",{},p.in),el("td",{},i,p.description?" "+p.description:"")))}
      box.append(tb)}
    let body=null;if(op.requestBody){body=el("textarea",{rows:"6",cols:"70"});body.value=JSON.stringify({event_id:"e-1",user_id:"u-1",user_type:"Non-Logged",page:"p-1",ts:1660000000000},null,1);box.append(el("div",{},body))}
    const out=el("pre",{hidden:""});const btn=el("button",{},"Try it");
    btn.onclick=async()=>{let url=path;const q=new URLSearchParams();
      for(const[n,[p,i]]of Object.entries(inputs)){if(!i.value)continue;if(p.in==="path")url=url.replace("{"+n+"}",encodeURIComponent(i.value));else q.set(n,i.value)}
      const qs=q.toString();if(qs)url+="?"+qs;
      const init={method:method.toUpperCase()};if(body){init.body=body.value;init.headers={"content-type":"application/json"}}
      try{const r=await fetch(url,init);const t=await r.text();out.textContent=r.status+" "+r.statusText+"\n\n"+t}catch(e){out.textContent=String(e)}
      out.hidden=false};
    box.append(el("div",{},btn),out);ops.append(box)}}
}).catch(e=>{document.getElementById("desc").textContent="Could not load /openapi.json: "+e});
</script></body></html>
"#;
