package kavka.clients;

import java.util.Base64;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The observations this client prints: one JSON object per line on stdout, flushed at once so that
 * the pytest module sees them even if the process is killed next.  Bytes are printed as base64.
 */
final class Json {
    private Json() {
    }

    /** An ordered object from alternating names and values. */
    static Map<String, Object> obj(Object... namesAndValues) {
        Map<String, Object> map = new LinkedHashMap<>();
        for (int i = 0; i < namesAndValues.length; i += 2) {
            map.put((String) namesAndValues[i], namesAndValues[i + 1]);
        }
        return map;
    }

    static String b64(byte[] bytes) {
        return bytes == null ? null : Base64.getEncoder().encodeToString(bytes);
    }

    static byte[] unb64(String text) {
        return text.equals("-") ? null : Base64.getDecoder().decode(text);
    }

    static synchronized void print(Map<String, Object> line) {
        StringBuilder out = new StringBuilder();
        write(out, line);
        System.out.println(out);
        System.out.flush();
    }

    private static void write(StringBuilder out, Object value) {
        if (value == null) {
            out.append("null");
        } else if (value instanceof String s) {
            string(out, s);
        } else if (value instanceof Number || value instanceof Boolean) {
            out.append(value);
        } else if (value instanceof Map<?, ?> map) {
            object(out, map);
        } else if (value instanceof Iterable<?> items) {
            array(out, items.iterator());
        } else {
            string(out, value.toString());
        }
    }

    private static void object(StringBuilder out, Map<?, ?> map) {
        out.append('{');
        String sep = "";
        for (Map.Entry<?, ?> entry : map.entrySet()) {
            out.append(sep);
            string(out, String.valueOf(entry.getKey()));
            out.append(':');
            write(out, entry.getValue());
            sep = ",";
        }
        out.append('}');
    }

    private static void array(StringBuilder out, Iterator<?> items) {
        out.append('[');
        String sep = "";
        while (items.hasNext()) {
            out.append(sep);
            write(out, items.next());
            sep = ",";
        }
        out.append(']');
    }

    private static void string(StringBuilder out, String s) {
        out.append('"');
        for (char c : s.toCharArray()) {
            switch (c) {
                case '"' -> out.append("\\\"");
                case '\\' -> out.append("\\\\");
                case '\n' -> out.append("\\n");
                case '\r' -> out.append("\\r");
                case '\t' -> out.append("\\t");
                default -> {
                    if (c < 0x20) {
                        out.append(String.format("\\u%04x", (int) c));
                    } else {
                        out.append(c);
                    }
                }
            }
        }
        out.append('"');
    }
}
