"""Pages that exist for the test suite only (mounted when STREAM_CHAT_TEST_PAGES=1)."""
