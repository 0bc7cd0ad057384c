using System.Text;

namespace Dicc.Cli.Sweep;

/// <summary>
/// A table as plain aligned text, one line per row whatever the console's width: sweep tables hold long run
/// directories and arguments that a console-width table would wrap in the middle, and their lines are read by
/// scripts and grep as often as by people.
/// </summary>
internal static class PlainTable
{
    /// <summary>The lines: a header, a rule, a line per row; columns in <paramref name="right"/> are right-aligned.</summary>
    public static IEnumerable<string> Lines(IReadOnlyList<string> headers, IEnumerable<IReadOnlyList<string>> rows, params int[] right)
    {
        var all = rows.ToList();
        var widths = headers.Select((h, i) => Math.Max(h.Length, all.Select(r => i < r.Count ? r[i].Length : 0).DefaultIfEmpty(0).Max())).ToArray();
        string Line(IReadOnlyList<string> cells)
        {
            var s = new StringBuilder();
            for (int i = 0; i < headers.Count; i++)
            {
                string cell = i < cells.Count ? cells[i] : "";
                if (i > 0) s.Append("  ");
                bool last = i == headers.Count - 1;
                s.Append(right.Contains(i) ? cell.PadLeft(widths[i]) : last ? cell : cell.PadRight(widths[i]));
            }
            return s.ToString().TrimEnd();
        }
        yield return Line(headers);
        yield return new string('-', widths.Sum() + 2 * (widths.Length - 1));
        foreach (var row in all) yield return Line(row);
    }
}
