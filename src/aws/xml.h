/*
 * xml — just enough XML to read the answers of AWS's Query protocol (SNS
 * PublishBatch replies, SNS and SQS error bodies): find an element's content
 * and decode its text. Not a parser: those answers are flat and known, their
 * elements hold text or other elements, and nothing here checks
 * well-formedness.
 *
 * Decoding covers the five named entities (&lt; &gt; &amp; &quot; &apos;)
 * and numeric character references (&#NNN; and &#xHHH;, x in either case, up
 * to 8 digits, of a Unicode scalar value other than U+0000), written as
 * UTF-8, and CDATA sections (<![CDATA[ ... ]]>), whose text is taken as
 * written, nothing in it decoded. Anything else after a '&' stays as
 * written, as does a CDATA section not closed. A tag inside a closed CDATA
 * section is its text: it neither starts an element nor ends one.
 *
 * Attribute values are not told apart from what is around them: a
 * "<![CDATA[" in one is taken for a section's start, and a '>' in one for
 * the end of its start tag. Neither is worth handling: XML forbids '<'
 * in an attribute value (it is written &lt;), so the first comes only in a
 * document that is not XML, and AWS's answers carry no attribute but the
 * root's xmlns, a URI with neither. Either can only give another element,
 * an element's content from the wrong start, or none; nothing is read
 * outside [s, end).
 */
#ifndef TASKD_XML_H
#define TASKD_XML_H

#include <stddef.h>

/*
 * The content of the first element tag in [s, end) — <tag>, <tag attr="…">
 * or the empty <tag/>, not <tagx> — up to the first </tag> after it, the
 * text of closed CDATA sections passed over in both searches: its
 * start, with *n its length (0 for <tag/>) and, when after is not NULL,
 * *after just past the end tag. NULL when there is none, or when that first
 * one is not closed.
 */
const char *xml_find(const char *s, const char *end, const char *tag, size_t *n,
                     const char **after);

/*
 * Decode the entities, character references and CDATA sections of s[0..n)
 * into out (cap > 0 bytes), NUL-terminated; the bytes written. Stops before
 * the first byte or reference that does not fit, never splitting a
 * reference; decoded text is never longer than its source, so cap = n + 1
 * always holds all of it.
 */
size_t xml_decode(char *out, size_t cap, const char *s, size_t n);

#endif
