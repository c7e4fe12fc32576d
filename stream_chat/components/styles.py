"""Styles more than one component uses."""

# Read by screen readers, not shown: the usual clip pattern (display: none would hide it
# from them too).
VISUALLY_HIDDEN = {
    "position": "absolute",
    "width": "1px",
    "height": "1px",
    "overflow": "hidden",
    "clip": "rect(0 0 0 0)",
    "white_space": "nowrap",
}
