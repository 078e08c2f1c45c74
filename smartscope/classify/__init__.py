"""smartscope.classify"""
