namespace Dicc.Engine.Clustering;

/// <summary>How a class's distances to its centre are cut into subclasses (docs/method.md, "Interval or rank partition").</summary>
public enum PartitionMode
{
    /// <summary>
    /// The paper's equations (default): <c>delta = max d / Ns</c>, <c>n = min(floor(d / delta), Ns - 1)</c>,
    /// 0 when delta = 0. Subclass sizes follow the distance distribution.
    /// </summary>
    Interval,

    /// <summary>
    /// The paper's Algorithm 1 (argsort): order by distance, ties by batch position,
    /// <c>n = floor(rank * Ns / count)</c>. Equal-size subclasses.
    /// </summary>
    Rank,
}

/// <summary>Parsing and naming partition modes as the CLI and run files write them (interval, rank).</summary>
public static class PartitionModes
{
    /// <summary>Parses <c>interval</c> or <c>rank</c> (case-insensitive).</summary>
    public static PartitionMode Parse(string text) => text.Trim().ToLowerInvariant() switch
    {
        "interval" => PartitionMode.Interval,
        "rank" => PartitionMode.Rank,
        _ => throw new FormatException($"unknown partition mode '{text.Trim()}'; valid: interval, rank."),
    };

    /// <summary>The lower-case name <see cref="Parse"/> reads.</summary>
    public static string Name(this PartitionMode mode) => mode == PartitionMode.Rank ? "rank" : "interval";
}
