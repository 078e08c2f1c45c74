"""smartscope.commands"""
