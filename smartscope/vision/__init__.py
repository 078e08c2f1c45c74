"""smartscope.vision"""
