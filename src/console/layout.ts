import { CSS_PATH, JS_PATH } from './assets.js';
import { html, type Html } from './html.js';

export interface PageContext {
  /** The operator's name (who the controls record), or undefined without a login. */
  who?: string;
  csrf: string;
  /** Whether a token guards the console (then a logout button is shown). */
  loginRequired: boolean;
}

export function layout(title: string, ctx: PageContext, body: Html, live?: string): Html {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · remediator</title>
<link rel="stylesheet" href="${CSS_PATH}">
<script src="${JS_PATH}" defer></script>
</head>
<body>
<header class="top">
  <a class="brand" href="/">remediator</a>
  <a href="/">Runs</a>
  <a href="/procedures">Procedures</a>
  <a href="/queue">Queue</a>
  <span class="who">${ctx.who ? html`signed in as <b>${ctx.who}</b>` : ''}</span>
  ${ctx.loginRequired ? html`<form method="post" action="/logout"><input type="hidden" name="_csrf" value="${ctx.csrf}" /><button type="submit">Log out</button></form>` : ''}
</header>
<main${live ? html` data-live="${live}"` : ''}>${body}</main>
</body>
</html>`;
}

export function csrfField(ctx: PageContext): Html {
  return html`<input type="hidden" name="_csrf" value="${ctx.csrf}" />`;
}

export function badge(state: string): Html {
  return html`<span class="badge ${state}">${state}</span>`;
}

/** A duration bar: how much of `of` was used (over 100% shows red). */
export function bar(used: number, of: number): Html {
  const ratio = of > 0 ? used / of : 0;
  const tenth = Math.min(10, Math.max(0, Math.round(ratio * 10)));
  return html`<span class="bar" title="${Math.round(ratio * 100)}%"
    ><span class="w${tenth}${ratio > 1 ? ' over' : ''}"></span
  ></span>`;
}
