"""Load the demo data: `python -m seeds` (see --help).

Refuses to seed a database that already has users. `--bulk N` adds N messages to one room
with bulk inserts, for the benchmarks.
"""

import argparse
import random
import sys
import time
from datetime import timedelta

from sqlalchemy import insert
from sqlmodel import func, select

from seeds.data import DEMO_PASSWORD, LINES, ROOMS, USERS
from stream_chat import accounts, repo
from stream_chat.models import LastRead, Message, Room, User, utcnow

MESSAGES_PER_ROOM = 60
BULK_CHUNK = 20_000


def seed_demo(rng: random.Random) -> int:
    """Creates the rooms, users and messages; returns how many messages it wrote."""
    # One hash for all demo users: Argon2 is deliberately slow, and they share a password.
    hashed = accounts.hash_password(DEMO_PASSWORD)
    with repo.session() as db:
        users = [User(name=name, email=email, hashed_password=hashed) for name, email in USERS]
        rooms = [Room(name=name, description=description) for name, description in ROOMS]
        db.add_all(users + rooms)
        db.commit()

        start = utcnow() - timedelta(days=3)
        rows = []
        for room in rooms:
            for n in range(MESSAGES_PER_ROOM):
                moment = start + timedelta(minutes=n * 37 + rng.randint(0, 20))
                rows.append(
                    {
                        "room_id": room.id,
                        "sender_id": rng.choice(users).id,
                        "content": rng.choice(LINES[room.name]),
                        "inserted_at": moment,
                        "updated_at": moment,
                    }
                )
        # Ids follow time: sort before inserting so that the id cursor and the clock agree.
        rows.sort(key=lambda row: row["inserted_at"])
        db.execute(insert(Message), rows)
        # The demo users have read the seeded history: the sidebars start with no unread
        # counts, and what is posted from now on counts.
        newest = db.exec(select(Message.room_id, func.max(Message.id)).group_by(Message.room_id))
        read = [
            {"user_id": user.id, "room_id": room_id, "last_read_message_id": message_id}
            for room_id, message_id in newest.all()
            for user in users
        ]
        db.execute(insert(LastRead), read)
        db.commit()
    return len(rows)


def seed_bulk(room_name: str, count: int, rng: random.Random) -> None:
    """Appends `count` messages to one room, in chunks of multi-row inserts."""
    with repo.session() as db:
        room = db.exec(select(Room).where(Room.name == room_name)).first()
        if room is None:
            sys.exit(f"No room named {room_name!r}: seed the demo data first.")
        sender_ids = list(db.exec(select(User.id)).all())
        lines = LINES.get(room_name) or LINES["random"]
        start = utcnow() - timedelta(seconds=count)
    engine = repo.engine()
    written = 0
    with engine.begin() as connection:
        while written < count:
            size = min(BULK_CHUNK, count - written)
            moments = [start + timedelta(seconds=written + i) for i in range(size)]
            connection.execute(
                insert(Message),
                [
                    {
                        "room_id": room.id,
                        "sender_id": rng.choice(sender_ids),
                        "content": rng.choice(lines),
                        "inserted_at": moment,
                        "updated_at": moment,
                    }
                    for moment in moments
                ],
            )
            written += size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m seeds", description=__doc__)
    parser.add_argument(
        "--if-empty", action="store_true", help="do nothing (and succeed) when already seeded"
    )
    parser.add_argument("--bulk", type=int, metavar="N", help="add N messages to --room")
    parser.add_argument("--room", default="sre-team", help="the room for --bulk")
    args = parser.parse_args(argv)
    rng = random.Random(2023)

    if args.bulk:
        began = time.perf_counter()
        seed_bulk(args.room, args.bulk, rng)
        elapsed = time.perf_counter() - began
        print(f"Added {args.bulk:,} messages to #{args.room} in {elapsed:.1f} s.")
        return 0

    if accounts.count_users() > 0:
        if args.if_empty:
            return 0
        print("The database already has users: refusing to seed it twice.", file=sys.stderr)
        return 1
    written = seed_demo(rng)
    print(
        f"Seeded {len(ROOMS)} rooms, {len(USERS)} users and {written} messages. "
        f"Log in as {USERS[0][1]} with the password {DEMO_PASSWORD!r}."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
