package kavka.clients;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;

/**
 * kavka's Java test client: one step of tests/clients/README.md's scenario per run.
 *
 * <pre>java -cp 'OUT/lib/*' kavka.clients.Main STEP BOOTSTRAP [ARG ...] [name=value ...]</pre>
 *
 * Arguments with an '=' are client settings added to the step's own (they win); the others are the
 * step's arguments.  What the step observes is printed as JSON lines on stdout (see {@link Json}),
 * the clients' logs go to stderr.  Exit status 2 means bad arguments.
 */
public final class Main {
    private Main() {
    }

    /** The parsed command line of one step. */
    record Args(String bootstrap, List<String> positional, Properties settings) {
        String at(int index) {
            if (index >= positional.size()) {
                throw new IllegalArgumentException("missing argument " + (index + 1));
            }
            return positional.get(index);
        }

        int intAt(int index) {
            return Integer.parseInt(at(index));
        }

        /** The step's defaults, then bootstrap.servers, then the command line's settings. */
        Properties with(Map<String, Object> defaults) {
            Properties props = new Properties();
            props.putAll(defaults);
            props.put("bootstrap.servers", bootstrap);
            props.putAll(settings);
            return props;
        }
    }

    public static void main(String[] argv) throws Exception {
        if (argv.length < 2) {
            usage("STEP and BOOTSTRAP are required");
        }
        Args args = parse(argv);
        switch (argv[0]) {
            case "produce" -> Records.produce(args);
            case "consume" -> Records.consume(args);
            case "group-member" -> GroupMember.run(args);
            case "offsets-for-times" -> Times.run(args);
            case "admin" -> Admin.run(args);
            case "wordcount" -> WordCount.run(args);
            case "transactions" -> Transactions.produce(args);
            case "fence" -> Transactions.fence(args);
            case "read-to-end" -> Transactions.readToEnd(args);
            case "txn-plan" -> TxnVerification.run(args);
            case "txn-zombie" -> TxnVerification.zombie(args);
            case "authz-probe" -> Authz.probe(args);
            default -> usage("unknown step " + argv[0]);
        }
    }

    private static Args parse(String[] argv) {
        List<String> positional = new ArrayList<>();
        Properties settings = new Properties();
        for (int i = 2; i < argv.length; i++) {
            int eq = argv[i].indexOf('=');
            if (eq > 0) {
                settings.put(argv[i].substring(0, eq), argv[i].substring(eq + 1));
            } else {
                positional.add(argv[i]);
            }
        }
        return new Args(argv[1], positional, settings);
    }

    private static void usage(String problem) {
        System.err.println(problem + "\nusage: Main produce|consume|group-member|offsets-for-times|admin|wordcount"
                + "|transactions|fence|read-to-end|txn-plan|txn-zombie|authz-probe BOOTSTRAP [ARG ...] [name=value ...]");
        System.exit(2);
    }
}
