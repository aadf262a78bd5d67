// A small XML 1.0 reader for the test checkers (W3C XML 1.0 §2.1 well-formed documents, §2.4
// character data, §2.5 comments, §2.6 processing instructions, §2.7 CDATA, §3.1 tags and
// attributes, §4.1 character and predefined entity references). Enough for MPDs: no DTDs, no
// external entities. Throws XmlSyntaxError with the line number on anything not well-formed.

export interface XmlElement {
  /** Local name (prefix removed). */
  name: string;
  /** Name as written, with its prefix. */
  qname: string;
  /** Namespace URI the prefix (or the default namespace) resolves to, '' for none. */
  ns: string;
  attrs: Map<string, string>;
  children: XmlElement[];
  /** Character data directly inside the element (CDATA included), entities decoded. */
  text: string;
  line: number;
}

export class XmlSyntaxError extends Error {
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(`line ${line}: ${message}`);
  }
}

const NAME = /^[A-Za-z_:][A-Za-z0-9_.:-]*/;
const MAX_DEPTH = 64;

export function parseXml(src: string): XmlElement {
  let i = src.charCodeAt(0) === 0xfeff ? 1 : 0;
  const lineAt = (pos: number): number => {
    let n = 1;
    for (let k = 0; k < pos && k < src.length; k++) if (src.charCodeAt(k) === 10) n++;
    return n;
  };
  const fail = (msg: string, pos = i): never => {
    throw new XmlSyntaxError(msg, lineAt(pos));
  };
  const decode = (s: string, pos: number): string => {
    if (s.includes('<')) fail('"<" in character data or attribute value', pos);
    return s.replace(/&([^;\s&]*);?/g, (m, ref: string) => {
      if (!m.endsWith(';')) fail(`"&" not starting an entity reference: ${m.slice(0, 12)}`, pos);
      switch (ref) {
        case 'lt':
          return '<';
        case 'gt':
          return '>';
        case 'amp':
          return '&';
        case 'quot':
          return '"';
        case 'apos':
          return "'";
      }
      const num = /^#x([0-9A-Fa-f]{1,6})$/.exec(ref) ?? /^#([0-9]{1,7})$/.exec(ref);
      if (!num) return fail(`unknown entity &${ref};`, pos);
      const code = ref.startsWith('#x') ? parseInt(num[1]!, 16) : parseInt(num[1]!, 10);
      if (code > 0x10ffff || code === 0 || (code < 0x20 && code !== 9 && code !== 10 && code !== 13)) fail(`character reference &${ref}; is not an XML Char`, pos);
      return String.fromCodePoint(code);
    });
  };
  const skipWs = (): void => {
    while (i < src.length && /[ \t\r\n]/.test(src[i]!)) i++;
  };
  /** Comments, processing instructions and whitespace between markup outside the root. */
  const misc = (allowDecl: boolean): void => {
    for (;;) {
      skipWs();
      if (src.startsWith('<?xml', i) && /[\s?]/.test(src[i + 5] ?? '')) {
        if (!allowDecl || i !== (src.charCodeAt(0) === 0xfeff ? 1 : 0)) fail('XML declaration not at the very start');
        const end = src.indexOf('?>', i);
        if (end < 0) fail('unterminated XML declaration');
        i = end + 2;
      } else if (src.startsWith('<?', i)) {
        const end = src.indexOf('?>', i);
        if (end < 0) fail('unterminated processing instruction');
        i = end + 2;
      } else if (src.startsWith('<!--', i)) {
        comment();
      } else if (src.startsWith('<!DOCTYPE', i)) {
        fail('DOCTYPE is not accepted (an MPD has none)');
      } else {
        return;
      }
      allowDecl = false;
    }
  };
  const comment = (): void => {
    const end = src.indexOf('-->', i + 4);
    if (end < 0) fail('unterminated comment');
    if (src.slice(i + 4, end).includes('--')) fail('"--" inside a comment');
    i = end + 3;
  };

  const element = (scope: Map<string, string>, depth: number): XmlElement => {
    if (depth > MAX_DEPTH) fail(`elements nested deeper than ${MAX_DEPTH}`);
    const start = i;
    if (src[i] !== '<') fail('element expected');
    i++;
    const qname = NAME.exec(src.slice(i, i + 200))?.[0];
    if (!qname) return fail('element name expected');
    i += qname.length;
    const attrs = new Map<string, string>();
    let selfClosing = false;
    for (;;) {
      const before = i;
      skipWs();
      if (src.startsWith('/>', i)) {
        i += 2;
        selfClosing = true;
        break;
      }
      if (src[i] === '>') {
        i++;
        break;
      }
      if (i === before) fail(`whitespace expected before an attribute in <${qname}>`);
      const an = NAME.exec(src.slice(i, i + 200))?.[0];
      if (!an) fail(`attribute name expected in <${qname}>`);
      i += an!.length;
      skipWs();
      if (src[i] !== '=') fail(`"=" expected after ${an}`);
      i++;
      skipWs();
      const q = src[i];
      if (q !== '"' && q !== "'") fail(`quoted value expected for ${an}`);
      const end = src.indexOf(q!, i + 1);
      if (end < 0) fail(`unterminated value of ${an}`);
      if (attrs.has(an!)) fail(`attribute ${an} given twice in <${qname}>`);
      attrs.set(an!, decode(src.slice(i + 1, end), i).replace(/[\t\r\n]/g, ' '));
      i = end + 1;
    }
    // Namespaces in XML 1.0 §6: xmlns and xmlns:p declarations apply to this element down.
    let inner = scope;
    for (const [k, v] of attrs) {
      if (k === 'xmlns' || k.startsWith('xmlns:')) {
        if (inner === scope) inner = new Map(scope);
        inner.set(k === 'xmlns' ? '' : k.slice(6), v);
      }
    }
    const colon = qname.indexOf(':');
    const prefix = colon < 0 ? '' : qname.slice(0, colon);
    const ns = inner.get(prefix);
    if (prefix && ns === undefined) fail(`undeclared namespace prefix ${prefix}`, start);
    const el: XmlElement = { name: colon < 0 ? qname : qname.slice(colon + 1), qname, ns: ns ?? '', attrs, children: [], text: '', line: lineAt(start) };
    if (selfClosing) return el;
    for (;;) {
      const lt = src.indexOf('<', i);
      if (lt < 0) fail(`<${qname}> is not closed`, start);
      if (lt > i) el.text += decode(src.slice(i, lt), i);
      i = lt;
      if (src.startsWith('</', i)) {
        const close = `</${qname}`;
        if (!src.startsWith(close, i) || !/[\s>]/.test(src[i + close.length] ?? '')) fail(`expected ${close}> for the element of line ${el.line}`);
        i += close.length;
        skipWs();
        if (src[i] !== '>') fail(`">" expected in ${close}`);
        i++;
        return el;
      }
      if (src.startsWith('<!--', i)) comment();
      else if (src.startsWith('<![CDATA[', i)) {
        const end = src.indexOf(']]>', i);
        if (end < 0) fail('unterminated CDATA section');
        el.text += src.slice(i + 9, end);
        i = end + 3;
      } else if (src.startsWith('<?', i)) {
        const end = src.indexOf('?>', i);
        if (end < 0) fail('unterminated processing instruction');
        i = end + 2;
      } else el.children.push(element(inner, depth + 1));
    }
  };

  misc(true);
  if (i >= src.length) fail('no root element');
  const root = element(new Map([['xml', 'http://www.w3.org/XML/1998/namespace']]), 0);
  misc(false);
  if (i < src.length) fail('content after the root element');
  return root;
}
