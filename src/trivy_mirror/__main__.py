from trivy_mirror.cli import main

main()
