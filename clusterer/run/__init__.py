"""The run: stages over one shared day object, the pipeline that orders them, engines that run them."""
