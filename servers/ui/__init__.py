"""The local gallery (``thinkedit ui``): browse runs, follow running ones live, start and review runs."""
