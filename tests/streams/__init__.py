"""Tests of the streams core, client model and assets/streams.js."""
