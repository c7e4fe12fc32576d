"""The browser's awareness store (assets/awareness.js) in Node: the typing line, the members
panel's lists, the presence stylesheet, expiry, and what it refuses to take from a signal."""

from tests.support.node import run_node

SCRIPT = """
import { AwarenessStore, membersOf, presenceCss, typingLine } from "../../assets/awareness.js";
const out = {};
out.lines = [[], ["Ada"], ["Ada", "Alan"], ["Ada", "Alan", "Grace"]].map(typingLine);
const store = new AwarenessStore();
store.apply({ presence: { full: true, users: { "1": "online", "2": "away", "x": "online" } } }, 0);
store.apply({ room: { id: 7, full: false, roster: { "1": "Ada" } } }, 0);  // no picture yet
out.beforePicture = store.getSnapshot().roomId;
store.apply({ room: { id: 7, full: true, roster: { "1": "Ada", "3": "Alan" },
  posters: { "2": "Grace", "3": "Alan", "4": "<b>Ken</b>" },
  typing: { "3": ["Alan", 15], "1": ["Ada", 2] } } }, 0);
store.apply({ room: { id: 8, full: false, stopped: ["3"] } }, 0);  // another room's: ignored
out.typists = store.getSnapshot().typists.map((t) => t.name);
out.nextExpiry = store.expire(2000);
out.afterExpiry = store.getSnapshot().typists.map((t) => t.name);
store.apply({ room: { id: 7, full: false, stopped: ["3"] } }, 2000);
out.afterStop = store.getSnapshot().typists.length;
store.apply({ presence: { full: false, users: { "2": null, "3": "online" } } }, 0);
const members = membersOf(store.getSnapshot(), 1);
out.here = members.here.map((m) => [m.label, m.status]);
out.others = members.others.map((m) => [m.label, m.status]);
out.css = presenceCss(store.getSnapshot().presence);
console.log(JSON.stringify(out));
"""


def test_the_awareness_store() -> None:
    out = run_node(SCRIPT)
    assert out["lines"] == [
        "",
        "Ada is typing…",
        "Ada and Alan are typing…",
        "Several people are typing…",
    ]
    assert out["beforePicture"] is None
    assert out["typists"] == ["Ada", "Alan"]
    # Ada's notice had 2 s left: gone at 2 s; Alan's expires at 15 s.
    assert out["afterExpiry"] == ["Alan"]
    assert out["nextExpiry"] == 15000
    assert out["afterStop"] == 0
    assert out["here"] == [["Ada (you)", "online"], ["Alan", "online"]]
    # A name is text, never markup; a user who went offline says so.
    assert out["others"] == [["<b>Ken</b>", "offline"], ["Grace", "offline"]]
    # The dot's one rule, then one per user online or away: only numeric ids get there.
    dot, *users = out["css"].splitlines()
    assert dot.startswith(".avatar-slot:not([data-assistant])::after{")
    assert users == [
        '[data-user-id="1"]{--presence-color:var(--green-9);--presence-display:block}',
        '[data-user-id="3"]{--presence-color:var(--green-9);--presence-display:block}',
    ]
