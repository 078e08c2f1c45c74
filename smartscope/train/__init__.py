"""smartscope.train"""
