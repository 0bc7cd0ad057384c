using System.ComponentModel;
using Spectre.Console;

namespace Dicc.Cli.Infrastructure;

/// <summary>
/// An option's or argument's help text, shown by <c>--help</c> as written: Spectre renders descriptions as
/// markup, where a '[' (as in <c>synthetic[:per-class=600]</c>) starts a style tag, so the text is escaped here
/// once for every option instead of by hand in each.
/// </summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class OptionHelpAttribute(string text) : DescriptionAttribute(Markup.Escape(text))
{
    /// <summary>The text as written (unescaped).</summary>
    public string Text { get; } = text;
}
