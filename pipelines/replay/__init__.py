"""The replay server: recorded agency responses served over HTTP on 127.0.0.1, with each agency's
own query and paging semantics, so that the demo and the tests exercise the real HTTP code."""
