"""The demo world. Deterministic, so screenshots and benchmarks are repeatable."""

DEMO_PASSWORD = "streamchat-demo"

ROOMS: list[tuple[str, str]] = [
    ("weekend-plans", "Hikes, brunches and who is bringing the snacks."),
    ("sre-team", "Pages, postmortems and the on-call rota."),
    ("design-review", "Mockups, feedback and pixel arguments."),
    ("book-club", "This month: a novel nobody has finished yet."),
    ("random", "Everything else."),
]

USERS: list[tuple[str, str]] = [
    ("Ada Lovelace", "ada@streamchat.io"),
    ("Grace Hopper", "grace@streamchat.io"),
    ("Alan Turing", "alan@streamchat.io"),
    ("Katherine Johnson", "katherine@streamchat.io"),
    ("Linus Torvalds", "linus@streamchat.io"),
    ("Margaret Hamilton", "margaret@streamchat.io"),
    ("Dennis Ritchie", "dennis@streamchat.io"),
    ("Barbara Liskov", "barbara@streamchat.io"),
    ("Ken Thompson", "ken@streamchat.io"),
    ("Radia Perlman", "radia@streamchat.io"),
]

LINES: dict[str, list[str]] = {
    "weekend-plans": [
        "Anyone up for the ridge trail on Saturday?",
        "I can drive, there is room for three more.",
        "Forecast says sun until 3pm, then showers.",
        "Brunch at the corner place after? They open at 9.",
        "I'll bring the **good** coffee this time.",
        "Count me in, but I need to be back by 6.",
        "Should we book a table or just show up?",
        "Parking fills up early, let's meet at 7:30.",
        "Does anyone have a spare pair of poles?",
        "Photos from last time: the view at the top was unreal.",
    ],
    "sre-team": [
        "Paging: p99 latency on the checkout API is above 800 ms.",
        "Looking. Deploy `web-2024.11.3` went out 10 minutes ago.",
        "Rolling back, the new connection pool size looks wrong.",
        "Error rate back under 0.1%. Writing up the timeline now.",
        "Reminder: on-call handoff is at 17:00 UTC.",
        "Can someone review the alert thresholds PR?",
        "Disk on `db-replica-3` at 91%, vacuum is running.",
        "```\nkubectl rollout undo deployment/checkout\n```",
        "Postmortem doc is up, please add what you saw.",
        "Who owns the flaky synthetic check for the login page?",
    ],
    "design-review": [
        "New mockups for the settings page are in the folder.",
        "The contrast on the secondary button is too low for AA.",
        "Can we try the sidebar at 280px instead of 320?",
        "Love the empty state illustration.",
        "Dark mode: the code blocks need a different background.",
        "I'd drop the second call to action, it competes with the first.",
        "Spacing scale is 4/8/12/16/24, let's stick to it.",
        "Mobile layout: the header wraps at 360px, fix incoming.",
    ],
    "book-club": [
        "I'm on chapter 4 and I already have opinions.",
        "No spoilers past chapter 6 please!",
        "The narrator is definitely unreliable.",
        "Next month's pick: something shorter, I beg you.",
        "Meeting on Thursday at 7, my place.",
        "That ending though. Let's talk Thursday.",
    ],
    "random": [
        "Has anyone tried the new ramen place?",
        "TIL you can `git switch -` to jump back to the last branch.",
        "Coffee machine on floor 3 is fixed!",
        "Happy Friday everyone.",
        "Lost: one blue umbrella. Found: three black ones.",
        "Who left the plant in the meeting room? It's thriving.",
    ],
}
