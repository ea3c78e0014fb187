"""The server's counters, rendered as Prometheus text at /metrics."""

from __future__ import annotations

import threading
from collections import Counter

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class Metrics:
    """Counters kept in memory, rendered as Prometheus text."""

    def __init__(self) -> None:
        self.requests: Counter[tuple[str, int]] = Counter()
        self.errors: Counter[str] = Counter()
        self.bytes_sent = 0
        self.bytes_received = 0
        self.in_flight = 0
        self.durations = [0] * (len(_BUCKETS) + 1)
        self.duration_sum = 0.0
        self._lock = threading.Lock()

    def sent(self, n: int) -> None:
        with self._lock:
            self.bytes_sent += n

    def received(self, n: int) -> None:
        with self._lock:
            self.bytes_received += n

    def done(self, method: str, status: int, seconds: float, cause: str | None) -> None:
        with self._lock:
            self.requests[(method, status)] += 1
            if cause:
                self.errors[cause] += 1
            self.duration_sum += seconds
            for i, bound in enumerate(_BUCKETS):
                if seconds <= bound:
                    self.durations[i] += 1
                    break
            else:
                self.durations[-1] += 1

    def render(self, budget_used: int, budget_parts: int) -> str:
        with self._lock:
            lines = ["# TYPE argosy_server_requests_total counter"]
            for (method, status), n in sorted(self.requests.items()):
                lines.append(
                    f'argosy_server_requests_total{{method="{method}",code="{status}"}} {n}'
                )
            lines.append("# TYPE argosy_server_errors_total counter")
            for cause, n in sorted(self.errors.items()):
                lines.append(f'argosy_server_errors_total{{cause="{cause}"}} {n}')
            lines += [
                "# TYPE argosy_server_sent_bytes_total counter",
                f"argosy_server_sent_bytes_total {self.bytes_sent}",
                "# TYPE argosy_server_received_bytes_total counter",
                f"argosy_server_received_bytes_total {self.bytes_received}",
                "# TYPE argosy_server_in_flight gauge",
                f"argosy_server_in_flight {self.in_flight}",
                "# TYPE argosy_server_buffer_parts gauge",
                f'argosy_server_buffer_parts{{state="used"}} {budget_used}',
                f'argosy_server_buffer_parts{{state="budget"}} {budget_parts}',
                "# TYPE argosy_server_request_seconds histogram",
            ]
            total = 0
            for bound, n in zip(_BUCKETS, self.durations, strict=False):
                total += n
                lines.append(f'argosy_server_request_seconds_bucket{{le="{bound}"}} {total}')
            total += self.durations[-1]
            lines.append(f'argosy_server_request_seconds_bucket{{le="+Inf"}} {total}')
            lines.append(f"argosy_server_request_seconds_sum {self.duration_sum:.6f}")
            lines.append(f"argosy_server_request_seconds_count {total}")
        return "\n".join(lines) + "\n"
