// Notes are markdown written by anyone with the token, so they are rendered without innerHTML:
// every piece of text becomes a text node (HTML in a note shows as text, scripts never run) and
// links keep only http(s), in-page (#) and same-site (/) targets. The subset: headings (#),
// paragraphs, "-"/"*" and "1." lists, fenced code, `code`, **bold**, *italic*, [text](url).

import { h } from "./util.js";

const SAFE_LINK = /^(https?:|#|\/(?!\/))/i;
const INLINE = /(`[^`]+`)|(\*\*[^*]+\*\*)|(\*[^*\s][^*]*\*)|(\[[^\]]+\]\([^)\s]+\))/;

/** Inline markdown of one line of text -> nodes. */
export function inline(text) {
  const out = [];
  let rest = text;
  while (rest) {
    const match = INLINE.exec(rest);
    if (!match) {
      out.push(rest);
      break;
    }
    if (match.index) out.push(rest.slice(0, match.index));
    const token = match[0];
    if (match[1]) out.push(h("code", {}, token.slice(1, -1)));
    else if (match[2]) out.push(h("strong", {}, inline(token.slice(2, -2))));
    else if (match[3]) out.push(h("em", {}, inline(token.slice(1, -1))));
    else {
      const [, label, url] = /^\[([^\]]+)\]\(([^)\s]+)\)$/.exec(token);
      out.push(SAFE_LINK.test(url) ? h("a", { href: url, rel: "noopener noreferrer", target: url.startsWith("#") ? null : "_blank" }, label) : token);
    }
    rest = rest.slice(match.index + token.length);
  }
  return out;
}

/** Markdown text -> an element holding its rendering (class "markdown"). */
export function renderMarkdown(text) {
  const root = h("div", { class: "markdown" });
  const lines = String(text || "").replace(/\r\n?/g, "\n").split("\n");
  let para = [];
  let list = null;
  const flush = () => {
    if (para.length) root.append(h("p", {}, inline(para.join(" "))));
    para = [];
    list = null;
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (/^```/.test(line)) {
      flush();
      const code = [];
      while (++i < lines.length && !/^```/.test(lines[i])) code.push(lines[i]);
      root.append(h("pre", {}, h("code", {}, code.join("\n"))));
      continue;
    }
    const heading = /^(#{1,4})\s+(.*)$/.exec(line);
    const item = /^\s*(?:([-*])|(\d+)[.)])\s+(.*)$/.exec(line);
    if (!line.trim()) {
      flush();
    } else if (heading) {
      flush();
      root.append(h(`h${Math.min(6, heading[1].length + 2)}`, {}, inline(heading[2])));
    } else if (item) {
      if (para.length) flush();
      const tag = item[1] ? "ul" : "ol";
      if (!list || list.tagName.toLowerCase() !== tag) {
        list = h(tag);
        root.append(list);
      }
      list.append(h("li", {}, inline(item[3])));
    } else {
      list = null;
      para.push(line.trim());
    }
  }
  flush();
  return root;
}
