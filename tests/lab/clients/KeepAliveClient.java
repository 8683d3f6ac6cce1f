// Java 17 worker for the network lab: java.net.http.HttpClient (HTTP/1.1,
// pooled connection), request 1, idle, request 2 on the same pooled connection.
//
// Usage: java KeepAliveClient.java BASE_URL IDLE_SECONDS [PATH...]
//
// Sets no socket option. The JDK gives no public way to read a pooled
// connection's local port; the server reports the peer port of every request
// and the harness compares those (and the capture shows the same 4-tuple).
//
// JSON lines on stdout, as the other clients: response / idle / sending /
// error / result.
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

public class KeepAliveClient {
    static final long T0 = System.nanoTime();

    static String t() {
        return String.format("%.4f", (System.nanoTime() - T0) / 1e9);
    }

    static String q(String s) {
        if (s == null) return "null";
        return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", " ") + "\"";
    }

    static void emit(String json) {
        System.out.println("{" + json + ", \"t\": " + t() + "}");
        System.out.flush();
    }

    public static void main(String[] args) throws Exception {
        String base = args[0];
        double idle = Double.parseDouble(args[1]);
        List<String> paths = new ArrayList<>();
        for (int i = 2; i < args.length; i++) paths.add(args[i]);
        if (paths.isEmpty()) { paths.add("/"); paths.add("/"); }

        HttpClient client = HttpClient.newBuilder()
            .version(HttpClient.Version.HTTP_1_1)
            .build();
        String outcome = "ok";
        String excType = null;
        String message = null;
        for (int n = 1; n <= paths.size(); n++) {
            if (n > 1) {
                emit("\"event\": \"idle\", \"n\": " + (n - 1) + ", \"seconds\": " + idle);
                Thread.sleep((long) (idle * 1000));
            }
            String path = paths.get(n - 1);
            emit("\"event\": \"sending\", \"n\": " + n + ", \"path\": " + q(path));
            try {
                HttpRequest req = HttpRequest.newBuilder(URI.create(base + path)).GET().build();
                HttpResponse<String> r = client.send(req, HttpResponse.BodyHandlers.ofString());
                emit("\"event\": \"response\", \"n\": " + n + ", \"status\": " + r.statusCode()
                     + ", \"local_port\": null, \"size\": " + r.body().length());
            } catch (Exception e) {
                outcome = "error";
                excType = e.getClass().getSimpleName();
                message = String.valueOf(e.getMessage());
                emit("\"event\": \"error\", \"n\": " + n + ", \"exc_type\": " + q(excType)
                     + ", \"message\": " + q(message));
                break;
            }
        }
        emit("\"event\": \"result\", \"outcome\": " + q(outcome) + ", \"local_ports\": [], \"elapsed\": " + t()
             + ", \"exc_type\": " + q(excType) + ", \"message\": " + q(message));
        System.exit(outcome.equals("ok") ? 0 : 1);
    }
}
