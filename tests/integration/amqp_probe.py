"""One AMQP operation as some user, for the role tests.

Usage: amqp_probe.py get QUEUE | publish EXCHANGE KEY | declare QUEUE

The URL (amqp://user:pass@host:port/vhost) comes from the environment
variable GRADEQ_PROBE_URL, never from the command line. Prints one line:
"ok" (exit 0), or the broker's refusal, e.g. "ACCESS_REFUSED - read access
to queue 'q' in vhost 'v' refused for user 'u'" (exit 3); other errors
exit 1.
"""
import os
import sys

import pika


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("get", "publish", "declare"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    url = os.environ.get("GRADEQ_PROBE_URL")
    if not url:
        print("GRADEQ_PROBE_URL is not set", file=sys.stderr)
        return 2
    op, args = sys.argv[1], sys.argv[2:]
    try:
        conn = pika.BlockingConnection(pika.URLParameters(url))
        ch = conn.channel()
        if op == "get":
            ch.basic_get(args[0], auto_ack=False)
        elif op == "publish":
            ch.confirm_delivery()
            ch.basic_publish(args[0], args[1], b"probe")
        else:
            ch.queue_declare(args[0], durable=True,
                             arguments={"x-queue-type": "quorum"})
        conn.close()
    except (pika.exceptions.ChannelClosedByBroker,
            pika.exceptions.ConnectionClosedByBroker) as e:
        print(f"{e.reply_text}")
        return 3 if e.reply_code == 403 else 1
    except pika.exceptions.ProbableAccessDeniedError as e:
        print(f"ACCESS_REFUSED - {e}")
        return 3
    except pika.exceptions.AMQPError as e:
        print(f"error: {e!r}")
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
