"""The browser halves of the looks and the mentions, from the real assets/looks.js and
assets/mentions.js run in Node: initials, grouping of rows, what the autocomplete reads as
typed and whom it offers, and the remark plugin's marks on a markdown tree."""

import json

from tests.support.node import run_node


def test_initials() -> None:
    names = [
        "Ada Lovelace",
        "grace",
        "Grace Brewster Murray Hopper",
        "李雷",
        "  ",
        "",
        "émile zola",
    ]
    script = f"""
    import {{ initials }} from "../../assets/looks.js";
    console.log(JSON.stringify({json.dumps(names)}.map(initials)));
    """
    assert run_node(script) == ["AL", "G", "GH", "李", "?", "?", "ÉZ"]


GROUPS_SCRIPT = """
import { markGroups } from "../../assets/looks.js";
const at = (minutes, day = 1) => new Date(2026, 11, day, 12, 0, minutes * 60).toISOString();
const row = (senderId, when) => ({ dataset: { senderId: String(senderId), at: when } });
const rows = [
  row(1, at(0)),
  row(1, at(1)),
  row(1, at(5)),       // 5 minutes after the group's first: still in it
  row(1, at(5.1)),     // past 5 minutes of the group's first message: a new group
  row(2, at(5.2)),     // another sender
  row(1, at(5.3)),
  row(1, at(5.4, 2)),  // the next day
  row(1, "not a date"),
  row(1, "not a date"),
];
const list = { children: rows };
markGroups(list);
const first = rows.map((r) => r.dataset.group);
// Deleting a group's first row makes the next one its start; inserting above regroups.
rows.splice(4, 1);
markGroups(list);
const afterDelete = rows.map((r) => r.dataset.group);
rows.unshift(row(1, at(-1)));
markGroups(list);
const afterInsert = rows.map((r) => r.dataset.group);
console.log(JSON.stringify({ first, afterDelete, afterInsert }));
"""


def test_rows_group_by_sender_within_five_minutes_of_the_groups_first_and_one_day() -> None:
    marks = run_node(GROUPS_SCRIPT)
    assert marks["first"] == [
        "start",
        "continued",
        "continued",
        "start",
        "start",
        "start",
        "start",
        "start",
        "start",
    ]
    assert marks["afterDelete"] == [
        "start",
        "continued",
        "continued",
        "start",
        "continued",
        "start",
        "start",
        "start",
    ]
    assert marks["afterInsert"][:5] == ["start", "continued", "continued", "start", "continued"]


def test_the_new_messages_divider_starts_a_group() -> None:
    script = """
    import { markGroups } from "../../assets/looks.js";
    const at = new Date(2026, 11, 1, 12, 0).toISOString();
    const rows = [0, 1, 2].map((n) => ({ dataset: { senderId: "1", at } }));
    rows[1].dataset.unreadFrom = "true";
    markGroups({ children: rows });
    console.log(JSON.stringify(rows.map((r) => r.dataset.group)));
    """
    assert run_node(script) == ["start", "start", "continued"]


def test_what_the_autocomplete_reads_as_typed_and_whom_it_offers() -> None:
    script = """
    import { typedMention, matches } from "../../assets/mentions.js";
    const typed = (text) => typedMention(text, text.length);
    console.log(JSON.stringify({
      typed: ["@", "hi @ad", "@ada lo", "mail me@ex", "@@x", "line\\n@gr", "done @**Ada|3** ",
              "(@al", "@" + "x".repeat(41), "a @b\\nc"].map(typed),
      caret: typedMention("@ada and more", 4),
      offered: [["Ada Lovelace", "lov"], ["Ada Lovelace", "ada lo"], ["José Ñúñez", "jose"],
                ["Ada Lovelace", "ovel"], ["assistant", "ASS"], ["Grace Hopper", ""],
                ["Grace Hopper", "  "]].map(([name, query]) => matches(name, query)),
    }));
    """
    result = run_node(script)
    assert result["typed"] == [
        {"start": 0, "query": ""},
        {"start": 3, "query": "ad"},
        {"start": 0, "query": "ada lo"},
        None,
        None,
        {"start": 5, "query": "gr"},
        None,
        {"start": 1, "query": "al"},
        None,
        None,
    ]
    assert result["caret"] == {"start": 0, "query": "ada"}
    assert result["offered"] == [True, True, True, False, True, True, True]


REMARK_SCRIPT = """
import { remarkMentions } from "../../assets/mentions.js";
const text = (value) => ({ type: "text", value });
const strong = (value) => ({ type: "strong", children: [text(value)] });
const tree = {
  type: "root",
  children: [
    { type: "paragraph", children: [
      text("hi @"), strong("Ada Lovelace|3"), text(" and @"), strong("Alan|4"),
      text(", x@"), strong("Mail|5"), text(" @"), strong("Bold only"),
      text(" @"),
      { type: "strong", children: [{ type: "emphasis", children: [text("A")] }, text("|6")] },
      { type: "inlineCode", value: "@**Code|7** @assistant" },
      text(" ask @assistant, not me@assistant.example"),
    ] },
    { type: "code", value: "@**Block|8**" },
    { type: "heading", depth: 1, children: [text("@"), strong("Grace|9")] },
  ],
};
remarkMentions({ viewerId: 3 })(tree);
const show = (node) => node.type === "mention"
  ? { mention: node.children[0].value, props: node.data.hProperties, tag: node.data.hName }
  : node.type === "text" ? node.value
  : node.type === "strong" ? { strong: node.children.map(show) }
  : node.children ? { [node.type]: node.children.map(show) }
  : { [node.type]: node.value };
console.log(JSON.stringify(tree.children.map(show)));
"""


def test_the_remark_plugin_marks_mentions_and_leaves_code_alone() -> None:
    paragraph, code, heading = run_node(REMARK_SCRIPT)
    ada = {
        "mention": "@Ada Lovelace",
        "props": {"className": ["mention"], "dataUserId": "3", "dataMe": "true"},
        "tag": "span",
    }
    alan = {
        "mention": "@Alan",
        "props": {"className": ["mention"], "dataUserId": "4"},
        "tag": "span",
    }
    assistant = {
        "mention": "@assistant",
        "props": {"className": ["mention"], "dataAssistant": "true"},
        "tag": "span",
    }
    assert paragraph["paragraph"] == [
        "hi ",
        ada,
        " and ",
        alan,
        ", x@",
        {"strong": ["Mail|5"]},
        " @",
        {"strong": ["Bold only"]},
        " @",
        {"strong": [{"emphasis": ["A"]}, "|6"]},
        {"inlineCode": "@**Code|7** @assistant"},
        " ask ",
        assistant,
        ", not me@assistant.example",
    ]
    assert code == {"code": "@**Block|8**"}
    assert heading == {
        "heading": [
            {
                "mention": "@Grace",
                "props": {"className": ["mention"], "dataUserId": "9"},
                "tag": "span",
            }
        ]
    }
